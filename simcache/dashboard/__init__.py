"""``simcache dashboard``: a local Streamlit app over traces, sweeps, replay logs and analyses.

Needs the optional extra (``pip install -e ".[dashboard]"``). Modules:

- :mod:`~simcache.dashboard.sources`: what each input path holds (no Streamlit needed);
- :mod:`~simcache.dashboard.traces`, :mod:`~.sweeps`, :mod:`~.replays`, :mod:`~.models`: the
  numbers behind each page, as plain functions over numpy / pandas;
- :mod:`~simcache.dashboard.charts`: the Altair charts;
- :mod:`~simcache.dashboard.state`: inputs and cached loaders inside the app;
- :mod:`~simcache.dashboard.app` and ``views/``: the Streamlit scripts;
- :mod:`~simcache.dashboard.server`: starting the app on 127.0.0.1 and a free port.
"""
