"""The Streamlit entry script: page setup, the sidebar of inputs, the home page and the four pages.

Started by :func:`simcache.dashboard.server.start` (``streamlit run`` on this file); Streamlit runs
it as ``__main__`` on every interaction. Each page is a script in ``views/``.
"""

from __future__ import annotations

from pathlib import Path

PAGES = (
    ("trace", "Trace", ":material/scatter_plot:"),
    ("sweep", "Sweep", ":material/show_chart:"),
    ("replay", "Replay", ":material/timeline:"),
    ("models", "Models", ":material/compare:"),
)


def main() -> None:
    """Lay out the sidebar and run the page the URL names."""
    import streamlit as st

    from simcache.dashboard import state

    st.set_page_config(page_title="simcache dashboard", page_icon=":material/memory:", layout="wide")
    here = Path(__file__).parent
    home = st.Page(str(here / "views" / "home.py"), title="Inputs", icon=":material/folder_open:", default=True)
    pages = [home, *(st.Page(str(here / "views" / f"{key}.py"), title=title, icon=icon, url_path=key)
                     for key, title, icon in PAGES)]
    page = st.navigation(pages)
    with st.sidebar:
        found = state.sources()
        st.caption(f"Inputs: {found.describe()}")
        with st.form("add-path", clear_on_submit=True, border=False):
            typed = st.text_input("Add a path", placeholder="trace, sweep, replay or analysis folder",
                                  help="A trace file or a folder written by simcache sweep, replay --out, "
                                       "analyze or demo.")
            if st.form_submit_button("Add") and typed:
                message = state.add_path(typed)
                if message:
                    st.error(message, icon=":material/error:")
                else:
                    st.rerun()
    for message in state.input_errors():
        st.error(message, icon=":material/error:")
    if not found and not state.input_errors():
        st.info("No inputs: start the dashboard with paths (`simcache dashboard PATH...`) or add one in "
                "the sidebar.", icon=":material/info:")
    page.run()


if __name__ == "__main__":
    main()
