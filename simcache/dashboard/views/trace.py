"""Trace page: the numbers of ``simcache trace info``, a 2-D map of a sample, one user's trajectory."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

MIN_POINTS, DEFAULT_POINTS, MAX_POINTS = 100, 2_000, 20_000  # the map's sample size slider


def render() -> None:
    """Draw the page."""
    import streamlit as st

    from simcache.dashboard import charts, state, traces

    st.title("Trace")
    found = state.sources()
    if not found.traces:
        st.info("No trace among the inputs. Pass a trace file (`simcache dashboard trace.arrow`) or a demo "
                "report folder.", icon=":material/info:")
        return
    names = {state.label(p, found): p for p in found.traces}
    name = st.selectbox("Trace", list(names), key="trace_file") if len(names) > 1 else next(iter(names))
    path = names[name]
    with state.user_errors():
        req = state.requests(path)
        with st.spinner("Computing the trace's numbers (distances on a sample)…", show_time=True):
            info = state.trace_info(path)
    _numbers(st, info, path)

    st.subheader("Map")
    n = len(req)
    c1, c2, c3 = st.columns([2, 3, 2])
    methods = dict(traces.METHODS)
    if not traces.umap_available():
        methods.pop("umap")
    method = c1.radio("Projection", list(methods), format_func=methods.get, horizontal=True, key="trace_method",
                      help="PCA is exact and instant; t-SNE and UMAP take longer and run on the sample."
                           + ("" if "umap" in methods else " UMAP needs the umap extra."))
    max_rows = n
    if n > MIN_POINTS:
        max_rows = c3.slider("Points on the map", min_value=MIN_POINTS, max_value=min(n, MAX_POINTS),
                             value=min(n, DEFAULT_POINTS), step=10, key=f"trace_points_{name}",
                             help="Whole users are sampled (seeded) until this many embeddings.")
    with state.user_errors():
        frame, vectors = state.sample(path, max_rows)
    options = traces.colourings(frame)
    colour = c2.radio("Colour by", list(options), format_func=options.get, horizontal=True, key=f"trace_colour_{name}")
    if method == "pca":
        coords = state.projection(path, max_rows, method)
    else:
        with st.spinner(f"{methods[method]} on {len(frame):,} points (cached afterwards)…", show_time=True):
            coords = state.projection(path, max_rows, method)
    frame = frame.assign(x=coords[:, 0], y=coords[:, 1])

    users = traces.users_by_embeddings(frame)
    track = None
    if users:
        counts = frame["user_id"].value_counts()
        user = st.selectbox("User (those with most embeddings first)", ["(none)", *users], index=1,
                            format_func=lambda u: u if u == "(none)" else f"{u} ({counts[u]} embeddings)",
                            key=f"trace_user_{name}")
        if user != "(none)":
            track = traces.user_track(frame, coords, vectors, user)
    left, right = st.columns([3, 2]) if track is not None else (st.container(), None)
    sampled = f"{len(frame):,} of {n:,} embeddings" + ("" if len(frame) == n else " (whole users, seeded sample)")
    left.caption(f"{methods[method]} of {sampled}; scroll to zoom, drag to pan.")
    left.altair_chart(charts.map_chart(frame, colour, method=methods[method], track=track), width="stretch")
    if track is not None and right is not None:
        right.caption(f"User {track['user_id'].iloc[0]}: {len(track)} embeddings; the diamond marks the first.")
        if len(track) > 1:
            right.altair_chart(charts.steps_chart(track), width="stretch")
        else:
            right.info("This user has one embedding: no steps.", icon=":material/info:")
        cols = [c for c in ("order", "seq", "time", "split", "norm", "step") if c in track.columns]
        right.dataframe(track[cols], hide_index=True, width="stretch", height=min(400, 38 + 35 * len(track)))


def _numbers(st: object, info: object, path: Path) -> None:
    """The headline numbers, the distance scales and the embeddings-per-user histogram."""
    from simcache.dashboard import charts, traces

    cols = st.columns(5)
    cols[0].metric("Embeddings", f"{info.rows:,}")
    cols[1].metric("Users", "-" if info.users is None else f"{info.users:,}")
    cols[2].metric("Dimension", info.dim)
    cols[3].metric("Time span", _span(info))
    cols[4].metric("Per user (mean)", f"{info.per_user['mean']:.2f}" if info.per_user else "-")
    md = info.metadata or {}
    bits = [f"`{path}`"]
    if md.get("dataset"):
        bits.append(f"dataset {md['dataset']}")
    if info.splits:
        bits.append("splits " + ", ".join(f"{k} {v:,}" for k, v in info.splits.items()))
    if info.time_min is not None:
        bits.append(f"from {_when(info.time_min, info.clock)} to {_when(info.time_max, info.clock)}")
    st.caption(" · ".join(bits))
    st.markdown("**Distance scales** (quantiles; choose a cache radius from these)")
    st.dataframe(traces.quantile_table(info).style.format("{:.4g}"), width="stretch")
    left, right = st.columns([1, 1])
    s = info.sample
    if s:
        left.caption(f"NN distances: {s['queries']:,} sampled requests against {s['reference']:,} "
                     f"{'sampled ' if s['reference_sampled'] else ''}rows (seed {s['seed']}); step distances "
                     f"over {s['pairs']:,} consecutive pairs of the same user.")
    if info.per_user:
        hist = pd.DataFrame({"embeddings": list(info.per_user["histogram"]),
                             "users": list(info.per_user["histogram"].values())})
        right.markdown("**Embeddings per user**")
        right.altair_chart(charts.bar_chart(hist, "embeddings", "users", x_title="embeddings of the user",
                                            y_title="users"), width="stretch")


def _span(info: object) -> str:
    if info.time_min is None:
        return "-"
    if info.clock == "file-order":
        return f"{info.time_max - info.time_min:,} rows"
    days = (info.time_max - info.time_min) / 86400
    return f"{days:,.1f} days"


def _when(t: int, clock: str | None) -> str:
    if clock == "file-order":
        return f"row {t:,}"
    try:
        return dt.datetime.fromtimestamp(int(t), dt.timezone.utc).strftime("%Y-%m-%d")
    except (OverflowError, OSError, ValueError):
        return str(t)


if __name__ == "__main__":
    render()
