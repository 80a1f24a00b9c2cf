"""The app's logic through Streamlit's own testing API: every page renders, widgets change the charts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from simcache.dashboard.sources import INPUTS_ENV

pytest.importorskip("streamlit", reason="the dashboard extra is not installed (pip install -e '.[dashboard]')")

APP = Path(__file__).resolve().parents[3] / "simcache" / "dashboard" / "app.py"


def make_app(monkeypatch: pytest.MonkeyPatch, *paths: Path):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv(INPUTS_ENV, json.dumps([str(p) for p in paths]))
    return AppTest.from_file(str(APP), default_timeout=120)


def open_page(at, page: str):
    """Run the app once (to register the pages), then the page; no exception, no error box."""
    at.run()
    at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def charts(at) -> list[str]:
    """A fingerprint of each chart on the page: its spec and its data."""
    out = []
    for c in at.get("vega_lite_chart"):
        h = hashlib.sha256(c.proto.spec.encode())
        for d in c.proto.datasets:
            h.update(d.data.data)
        out.append(h.hexdigest())
    return out


def widget(elements, label: str):
    return next(e for e in elements if e.label == label)


@pytest.fixture
def demo(monkeypatch, outputs):
    """The app over every fixture output."""
    return make_app(monkeypatch, outputs.report, outputs.trace_b, outputs.run_lru, outputs.run_fifo,
                    outputs.nag_sweep)


def test_home_lists_what_was_found(demo) -> None:
    demo.run()
    assert not demo.exception and not demo.error
    text = " ".join(m.value for m in demo.markdown)
    for name in ("report/trace.arrow", "model_b.arrow", "report/sweep", "object-sweep", "replay-lru (with log)",
                 "report/sweep (18 points)", "report/analysis"):
        assert name in text
    assert "2 traces, 2 sweeps, 20 replay runs, 1 analysis folder" in demo.sidebar.caption[0].value


def test_trace_page_numbers_map_and_user_trajectory(demo, outputs) -> None:
    from simcache.trace.info import trace_info

    at = open_page(demo, "trace")
    info = trace_info(outputs.trace)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Embeddings"] == f"{info.rows:,}" and metrics["Users"] == f"{info.users:,}"
    assert metrics["Dimension"] == str(info.dim)
    assert at.dataframe[0].value.loc["step distance, same user", "50%"] == info.consecutive_same_user["q0.5"]
    before = charts(at)
    assert len(before) == 3  # per-user histogram, map, the first user's steps
    widget(at.radio, "Colour by").set_value("norm").run()
    after = charts(at)
    assert after[1] != before[1] and after[0] == before[0]
    widget(at.selectbox, "User (those with most embeddings first)").set_value("(none)").run()
    assert len(charts(at)) == 2 and not at.exception
    widget(at.radio, "Projection").set_value("tsne").run()
    assert not at.exception and not at.error
    assert charts(at)[1] not in (before[1], after[1])


def test_trace_selector_switches_traces(demo) -> None:
    at = open_page(demo, "trace")
    rows = at.metric[0].value
    widget(at.selectbox, "Trace").set_value("model_b.arrow").run()
    assert not at.exception and at.metric[0].value != rows


def test_sweep_page_axes_policies_table_download_and_nag(demo) -> None:
    at = open_page(demo, "sweep")
    before = charts(at)
    assert len(before) == 2  # hit ratio and mean service cost
    table = at.dataframe[0].value
    assert len(table) == 9 and set(table["radius"]) == {0.5}  # 3 policies x 3 capacities, middle radius
    widget(at.radio, "x axis").set_value("radius").run()
    assert charts(at)[0] != before[0]
    assert set(at.dataframe[0].value["capacity"]) == {20}
    widget(at.multiselect, "Policies").set_value(["lru"]).run()
    assert set(at.dataframe[0].value["policy"]) == {"lru"}
    assert at.get("download_button")
    widget(at.selectbox, "Sweep").set_value("object-sweep").run()
    assert not at.exception
    assert "nag" in widget(at.multiselect, "Metrics").value
    assert len(charts(at)) == 3


def test_replay_page_overlays_two_logged_runs_and_rewindows(demo) -> None:
    at = open_page(demo, "replay")
    assert widget(at.selectbox, "Run").value == "replay-lru (log)"
    assert widget(at.selectbox, "Overlay a second run").value == "replay-fifo (log)"
    runs = at.dataframe[0].value
    assert runs["policy"].tolist() == ["lru", "fifo"]
    before = charts(at)
    assert len(before) == 2
    widget(at.number_input, "Requests per window").set_value(25).run()
    after = charts(at)
    assert after[0] != before[0] and after[1] == before[1]
    widget(at.slider, "Histogram bins").set_value(10).run()
    assert charts(at)[1] != after[1]
    widget(at.selectbox, "Overlay a second run").set_value("(none)").run()
    assert len(at.dataframe[0].value) == 1


def test_replay_page_shows_a_sweep_point_from_its_summary(demo) -> None:
    at = open_page(demo, "replay")
    widget(at.selectbox, "Run").set_value("report/sweep/lru_C80_r0.5").run()
    widget(at.selectbox, "Overlay a second run").set_value("(none)").run()
    assert not at.exception and not at.error
    assert len(charts(at)) == 2
    assert not any(s.label == "Histogram bins" for s in at.slider)


def test_models_page_compares_spaces(demo) -> None:
    at = open_page(demo, "models")
    spaces = widget(at.multiselect, "Spaces")
    assert spaces.value == ["trace: report/trace.arrow", "trace: model_b.arrow"]
    assert at.dataframe[0].value["space"].tolist() == ["report/trace.arrow", "model_b.arrow"]
    before = charts(at)
    widget(at.radio, "Norms").set_value("median").run()
    after = charts(at)
    assert after[0] != before[0] and after[1] == before[1]
    widget(at.multiselect, "Spaces").set_value(["trace: report/trace.arrow", "analysis: report/analysis"]).run()
    assert not at.exception and len(at.dataframe[0].value) == 2
    assert at.get("image")


def test_pages_without_their_inputs_say_what_to_pass(monkeypatch, outputs) -> None:
    at = make_app(monkeypatch, outputs.run_lru)
    for page in ("trace", "sweep", "models"):
        open_page(at, page)
        assert at.info and "simcache" in at.info[0].value
    open_page(at, "replay")
    assert len(charts(at)) == 2


def test_bad_inputs_and_unreadable_files_show_an_error_not_a_traceback(monkeypatch, tmp_path, outputs) -> None:
    bad = tmp_path / "broken.arrow"
    bad.write_bytes(b"not arrow at all")
    at = make_app(monkeypatch, tmp_path / "missing", bad)
    at.run()
    assert not at.exception
    assert any("missing: no such file or folder" in e.value for e in at.error)
    at.switch_page("views/trace.py").run()
    assert not at.exception
    assert any(e.value.startswith(f"{bad}: not an Arrow") for e in at.error)


def test_a_path_typed_in_the_sidebar_is_added_or_refused(monkeypatch, tmp_path, outputs) -> None:
    at = make_app(monkeypatch, outputs.run_lru)
    at.run()
    at.sidebar.text_input[0].input(str(tmp_path / "nowhere"))
    at.sidebar.button[0].click().run()
    assert not at.exception
    assert any("nowhere: no such file or folder" in e.value for e in at.sidebar.error)
    at.sidebar.text_input[0].input(str(outputs.trace_b))
    at.sidebar.button[0].click().run()
    assert not at.sidebar.error
    assert "1 trace" in at.sidebar.caption[0].value


def test_a_plain_matrix_without_trace_columns_gets_numbers_and_a_norm_map(monkeypatch, tmp_path) -> None:
    import numpy as np

    path = tmp_path / "vectors.npy"
    np.save(path, np.random.default_rng(0).normal(size=(150, 5)).astype(np.float32))
    at = open_page(make_app(monkeypatch, path), "trace")
    assert {m.label: m.value for m in at.metric}["Users"] == "-"
    assert widget(at.radio, "Colour by").options == ["norm"]
    assert len(charts(at)) == 1 and not at.selectbox
