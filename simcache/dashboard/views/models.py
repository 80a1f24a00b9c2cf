"""Models page: the embedding spaces of several traces (or analysis folders) compared, norms and angles."""

from __future__ import annotations


def render() -> None:
    """Draw the page."""
    import streamlit as st

    from simcache.dashboard import charts, models, state

    st.title("Models")
    found = state.sources()
    candidates = {f"trace: {state.label(p, found)}": ("trace", p) for p in found.traces}
    candidates.update({f"analysis: {state.label(p, found)}": ("analysis", p) for p in found.analyses
                       if {"norms", "angles"} & set(_names(p))})
    if not candidates:
        st.info("Nothing to compare. Pass several traces (one per model), e.g. "
                "`simcache dashboard a.arrow b.arrow`, or analysis folders.", icon=":material/info:")
        _figures(st, found, state)
        return
    default = [k for k, (kind, _) in candidates.items() if kind == "trace"] or list(candidates)
    chosen = st.multiselect("Spaces", list(candidates), default=default, key="models_spaces",
                            help="Traces are sampled here; analysis folders show the histograms simcache analyze "
                                 "stored.")
    if len([k for k in candidates if candidates[k][0] == "trace"]) < 2:
        st.caption("Give several traces (one per model) to compare their spaces side by side.")
    c1, c2, c3 = st.columns([2, 2, 3])
    max_rows = c1.select_slider("Rows sampled per trace", [1_000, 2_000, 5_000, 10_000, 20_000, 50_000],
                                value=5_000, key="models_rows")
    latest = c2.toggle("Latest embedding per user", value=False, key="models_latest",
                       help="Keep only each user's newest embedding (as simcache analyze --latest-per-user).")
    scale = c3.radio("Norms", ["raw", "median"], horizontal=True, key="models_scale",
                     format_func={"raw": "as they are", "median": "divided by each space's median"}.get)
    if not chosen:
        st.warning("Choose at least one space.", icon=":material/warning:")
        return
    spaces = []
    with state.user_errors(), st.spinner("Sampling norms and angles…", show_time=True):
        for key in chosen:
            kind, path = candidates[key]
            name = key.split(": ", 1)[1]
            spaces.append(state.trace_space(name, path, max_rows, latest) if kind == "trace"
                          else state.analysis_space(name, path))
    norms = models.density_frame(spaces, "norm", scale_by_median=scale == "median")
    angles = models.density_frame(spaces, "angle")
    left, right = st.columns(2)
    left.markdown("**Norms** ‖x‖" + (" / median" if scale == "median" else ""))
    left.altair_chart(charts.density_chart(norms, x_title="L2 norm" + (" / median norm" if scale == "median" else "")),
                      width="stretch")
    right.markdown("**Angles between random pairs** (dashed: directions uniform on the sphere)")
    right.altair_chart(charts.density_chart(angles, x_title="angle (radians)",
                                            reference=models.isotropic_angles([s.dim for s in spaces])),
                       width="stretch")
    st.dataframe(models.summary_table(spaces).style.format({"median norm": "{:.4g}", "median pair angle (°)": "{:.1f}"}),
                 hide_index=True, width="stretch")
    _figures(st, found, state)


def _names(folder: object) -> list[str]:
    from simcache.dashboard.sources import analysis_names

    return analysis_names(folder)


def _figures(st: object, found: object, state: object) -> None:
    """The figures of the analysis folders, one chosen at a time."""
    folders = [p for p in found.analyses if any((p / f"{n}.png").is_file() for n in _names(p))]
    if not folders:
        return
    st.subheader("Analysis figures")
    names = {state.label(p, found): p for p in folders}
    where = st.selectbox("Analysis folder", list(names), key="models_folder") if len(names) > 1 else next(iter(names))
    folder = names[where]
    available = [n for n in _names(folder) if (folder / f"{n}.png").is_file()]
    pick = st.radio("Analysis", available, horizontal=True, key="models_analysis")
    st.image(str(folder / f"{pick}.png"), caption=f"{where}/{pick}.png (simcache analyze)")


if __name__ == "__main__":
    render()
