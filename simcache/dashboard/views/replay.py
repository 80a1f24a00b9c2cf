"""Replay page: hit ratio over time (windowed) and the hit-distance histogram of one or two runs."""

from __future__ import annotations

import pandas as pd

NONE = "(none)"


def render() -> None:
    """Draw the page."""
    import streamlit as st

    from simcache.dashboard import charts, replays, state

    st.title("Replay")
    found = state.sources()
    if not found.runs:
        st.info("No replay run among the inputs. Pass a folder written by `simcache replay TRACE --out DIR --log` "
                "(or a sweep folder: its points have windows and histograms too).", icon=":material/info:")
        return
    runs = {_name(r, state, found): r for r in found.runs}
    logged = [k for k, r in runs.items() if r.log is not None]
    names = list(runs)
    first = names.index(logged[0]) if logged else 0
    second = names.index(logged[1]) + 1 if len(logged) > 1 else 0
    c1, c2 = st.columns(2)
    a = c1.selectbox("Run", names, index=first, key="replay_a")
    b = c2.selectbox("Overlay a second run", [NONE, *names], index=second, key="replay_b")
    chosen = [a] + ([b] if b not in (NONE, a) else [])

    with state.user_errors():
        summaries = {k: state.summary(runs[k]) for k in chosen}
        logs = {k: state.log(runs[k]) for k in chosen if runs[k].log is not None}
    legend = {k: k if runs[k].summary.name != "summary.json" else f"{k}: {replays.describe(summaries[k])}"
              for k in chosen}

    c1, c2, c3, c4 = st.columns([3, 2, 2, 2])
    ratio = c1.radio("Over time", list(replays.RATIOS), format_func=lambda r: replays.RATIOS[r].split()[0],
                     horizontal=True, key="replay_ratio", help="All hits, exact hits only, or approximate hits only.")
    n = max(int(s["counts"]["requests"]) for s in summaries.values())
    window = None
    if logs:
        window = c2.number_input("Requests per window", min_value=1, max_value=max(1, n),
                                 value=max(1, -(-n // 50)), step=max(1, n // 200), key="replay_window",
                                 help="Runs with a per-request log are re-windowed; runs without keep the "
                                      "windows of their summary.")
    bins = c3.slider("Histogram bins", 5, 100, 30, key="replay_bins",
                     help="Runs without a per-request log keep the bins of their summary.") if logs else None
    value = c4.radio("Histogram of", ["share", "count"], horizontal=True, key="replay_hist",
                     format_func={"share": "share of hits", "count": "hit counts"}.get)

    win_parts, hist_parts = [], []
    top = max([float(replays.hit_distances(lg).max(initial=0.0)) for lg in logs.values()] or [0.0])
    for k in chosen:
        if k in logs:
            w = replays.windows_from_log(logs[k], window)
            h = replays.histogram_from_log(logs[k], bins, hi=top if top > 0 else None)
        else:
            w = replays.windows_from_summary(summaries[k])
            h = replays.histogram_from_summary(summaries[k])
        win_parts.append(w.assign(run=legend[k]))
        hist_parts.append(h.assign(run=legend[k]))
    windows = pd.concat(win_parts, ignore_index=True)
    hist = pd.concat(hist_parts, ignore_index=True)
    x = "time" if "time" in windows.columns and windows["time"].notna().all() else "request"

    _headline(st, summaries)
    left, right = st.columns(2)
    left.markdown(f"**{replays.RATIOS[ratio]} over time**")
    if windows.empty:
        left.info("No windows stored for this run.", icon=":material/info:")
    else:
        left.altair_chart(charts.windows_chart(windows, ratio, ratio_title=replays.RATIOS[ratio], x=x), width="stretch")
        notes = [f"{k}: {'re-windowed from its log' if k in logs else 'windows of its summary'}" for k in chosen]
        left.caption("; ".join(notes))
    right.markdown("**Distance of the hits to the entry that served them**")
    if hist["count"].sum() == 0:
        right.info("No hits in the chosen run(s).", icon=":material/info:")
    else:
        radii = pd.DataFrame([{"run": legend[k], "radius": float(summaries[k]["parameters"]["radius"])}
                              for k in chosen if isinstance(summaries[k]["parameters"].get("radius"), (int, float))])
        right.altair_chart(charts.histogram_chart(hist, value, radii=radii), width="stretch")
        right.caption("Exact hits are at distance 0; the dashed line is the run's radius, which bounds the "
                      "distances of approximate hits.")


def _name(run: object, state: object, found: object) -> str:
    where = state.label(run.summary.parent, found)
    if run.summary.name == "summary.json":
        return where + (" (log)" if run.log is not None else "")
    return f"{state.label(run.summary.parent.parent, found)}/{run.summary.stem}"


def _headline(st: object, summaries: dict) -> None:
    """One row of numbers per run: requests, hit ratios, mean service cost."""
    rows = []
    for k, s in summaries.items():
        c, p = s["counts"], s.get("parameters", {})
        rows.append({"run": k, "policy": p.get("policy"), "capacity": p.get("capacity"), "radius": p.get("radius"),
                     "requests": c["requests"], "hit ratio": c["hit_ratio"], "exact": c["exact_hit_ratio"],
                     "approximate": c["approx_hit_ratio"],
                     "mean service cost": (s.get("cost") or {}).get("mean_service_cost")})
    table = pd.DataFrame(rows)
    st.dataframe(table.style.format({"hit ratio": "{:.4f}", "exact": "{:.4f}", "approximate": "{:.4f}",
                                     "mean service cost": "{:.4g}", "radius": "{:g}"}),
                 hide_index=True, width="stretch")


if __name__ == "__main__":
    render()
