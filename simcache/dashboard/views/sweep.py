"""Sweep page: a metric against capacity or radius, one line per policy, the table, a download."""

from __future__ import annotations


def render() -> None:
    """Draw the page."""
    import streamlit as st

    from simcache.dashboard import charts, state, sweeps

    st.title("Sweep")
    found = state.sources()
    if not found.sweeps:
        st.info("No sweep among the inputs. Pass a folder written by `simcache sweep` (or a demo report).",
                icon=":material/info:")
        return
    names = {state.label(p, found): p for p in found.sweeps}
    name = st.selectbox("Sweep", list(names), key="sweep_folder") if len(names) > 1 else next(iter(names))
    folder = names[name]
    with state.user_errors():
        df = state.results(folder)
    grid_axes = sweeps.axes(df)
    metric_labels = sweeps.metrics(df)
    if not grid_axes or not metric_labels:
        st.warning(f"{name}: the results table has no grid axis ({', '.join(sweeps.AXES)}) or no metric column.")
        return
    st.caption(f"`{folder}` · {len(df):,} points · {df['policy'].nunique()} policies"
               + "".join(f" · {df[a].nunique()} {a} values" for a in grid_axes)
               + (f" · {int(df['requests'].iloc[0]):,} requests" if "requests" in df.columns else ""))

    c1, c2, c3 = st.columns([2, 3, 3])
    x = c1.radio("x axis", grid_axes, horizontal=True, key=f"sweep_x_{name}")
    default_metrics = [m for m in ("hit_ratio", "mean_service_cost", "nag") if m in metric_labels] or [
        next(iter(metric_labels))]
    chosen = c2.multiselect("Metrics", list(metric_labels), default=default_metrics, format_func=metric_labels.get,
                            key=f"sweep_metrics_{name}")
    policies = list(dict.fromkeys(df["policy"]))
    picked = c3.multiselect("Policies", policies, default=policies, key=f"sweep_policies_{name}")

    fixed: dict[str, float] = {}
    group_by: list[str] = []
    others = [a for a in grid_axes if a != x and df[a].nunique() > 1]
    cols = st.columns(max(1, len(others) + 2))
    for i, axis in enumerate(others):
        values = sorted(df[axis].unique().tolist())
        choice = cols[i].selectbox(f"{axis}", ["every value", *values], index=1 + len(values) // 2,
                                   key=f"sweep_fix_{axis}_{name}",
                                   format_func=lambda v: v if isinstance(v, str) else f"{v:g}")
        if choice == "every value":
            group_by.append(axis)
        else:
            fixed[axis] = float(choice)
    params = None
    if sweeps.varied_params(df):
        values = sorted(df["params"].unique().tolist())
        params = cols[len(others)].multiselect("Policy parameters", values, default=values, key=f"sweep_params_{name}",
                                               format_func=lambda v: v or "(defaults)")
        group_by.append("params")
    xs = df[x].to_numpy(dtype=float)
    can_log = bool(xs.min() > 0 and xs.max() / xs.min() >= 10)
    log_x = cols[-1].toggle(f"log {x} axis", value=can_log and x == "capacity", disabled=not can_log,
                            key=f"sweep_log_{name}")

    table = sweeps.filter_results(df, policies=picked, params=params, fixed=fixed)
    if table.empty or not chosen:
        st.warning("Nothing to plot: choose at least one policy and one metric.", icon=":material/warning:")
        return
    plot = table.assign(series=sweeps.series_label(table, group_by)).sort_values(["series", x])
    left, right = st.columns([3, 2])
    with left:
        for m in chosen:
            st.markdown(f"**{metric_labels[m]}** against {x}"
                        + "".join(f", {a} = {v:g}" for a, v in fixed.items()))
            st.altair_chart(charts.sweep_chart(plot, x, m, metric_title=metric_labels[m], log_x=log_x),
                            width="stretch")
    with right:
        shown = [c for c in ("policy", *grid_axes, *(["params"] if params is not None else []), *chosen)
                 if c in table.columns]
        st.markdown(f"**Table** ({len(table):,} of {len(df):,} points; the download has every column)")
        st.dataframe(table[shown], hide_index=True, width="stretch", height=min(700, 38 + 35 * len(table)),
                     column_config={c: st.column_config.NumberColumn(metric_labels[c], format="%.4g")
                                    for c in chosen})
        st.download_button("Download the filtered table (CSV)", table.to_csv(index=False).encode(),
                           file_name=f"{folder.name}-filtered.csv", mime="text/csv",
                           icon=":material/download:", key="sweep_download")


if __name__ == "__main__":
    render()
