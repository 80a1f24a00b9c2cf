"""The dashboard pages: Streamlit scripts, one per page, run by :mod:`simcache.dashboard.app` (importing one draws nothing)."""
