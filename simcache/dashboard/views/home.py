"""Home page: what the dashboard found under its inputs, and where each thing is shown."""

from __future__ import annotations


def render() -> None:
    """Draw the page."""
    import streamlit as st

    from simcache.dashboard import state
    from simcache.dashboard.app import PAGES

    st.title("simcache dashboard")
    found = state.sources()
    if found.inputs:
        st.caption("Inputs: " + " · ".join(f"`{p}`" for p in found.inputs))
    links = {key: (title, icon) for key, title, icon in PAGES}
    groups = (
        ("trace", [state.label(p, found) for p in found.traces],
         "size, time span, distance scales, a 2-D map and users' trajectories"),
        ("sweep", [state.label(p, found) for p in found.sweeps],
         "metrics against capacity or radius, one line per policy, and the table"),
        ("replay", _runs(found, state),
         "hit ratio over time and the distances of hits, one or two runs overlaid"),
        ("models", [state.label(p, found) for p in found.analyses],
         "the traces above and these analysis folders compared: norms, angles, figures"),
    )
    cols = st.columns(len(groups))
    for col, (key, items, what) in zip(cols, groups, strict=True):
        title, icon = links[key]
        with col.container(border=True):
            st.page_link(f"views/{key}.py", label=f"**{title}**", icon=icon)
            st.caption(what)
            st.markdown("\n".join(f"- `{item}`" for item in items[:8]) if items else "*none given*")
            if len(items) > 8:
                st.caption(f"… and {len(items) - 8} more")


def _runs(found: object, state: object) -> list[str]:
    """Replay folders one by one; a sweep's points as one line per sweep."""
    out, points = [], {}
    for run in found.runs:
        if run.summary.name == "summary.json":
            out.append(state.label(run.summary.parent, found) + (" (with log)" if run.log is not None else ""))
        else:
            sweep = state.label(run.summary.parent.parent, found)
            points[sweep] = points.get(sweep, 0) + 1
    return out + [f"{sweep} ({n} points)" for sweep, n in points.items()]


if __name__ == "__main__":
    render()
