"""``simcache dashboard``: bad paths give one error line and exit 2; good ones start a loopback server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import psutil
import pytest
from typer.testing import CliRunner

from simcache.cli.app import app


@pytest.mark.parametrize("args, message", [
    (["/no/such/trace.arrow"], "error: /no/such/trace.arrow: no such file or folder"),
    (["{tmp}"], "error: {tmp}: holds no trace, sweep, replay run or analysis"),
])
def test_bad_paths_print_one_error_line_and_exit_2(tmp_path, args, message) -> None:
    result = CliRunner().invoke(app, ["dashboard", *[a.format(tmp=tmp_path) for a in args]])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message.format(tmp=tmp_path))


def test_missing_streamlit_is_a_user_error_with_the_install_hint(monkeypatch, outputs) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "streamlit" else real(name, *a))
    result = CliRunner().invoke(app, ["dashboard", str(outputs.trace)])
    assert result.exit_code == 2
    assert result.output.strip() == 'error: the dashboard needs Streamlit: pip install -e ".[dashboard]"'


def test_command_prints_the_url_of_a_server_bound_to_loopback_only(outputs) -> None:
    pytest.importorskip("streamlit", reason="the dashboard extra is not installed (pip install -e '.[dashboard]')")
    code = "import sys; from simcache.cli.app import main; sys.argv[0] = 'simcache'; main()"
    proc = subprocess.Popen([sys.executable, "-c", code, "dashboard", str(outputs.report)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        lines = [proc.stdout.readline() for _ in range(2)]
        assert lines[0].startswith("dashboard: 1 trace, 1 sweep, 18 replay runs, 1 analysis folder"), lines
        url = lines[1].split()[1]
        assert url.startswith("http://127.0.0.1:")
        port = int(url.rsplit(":", 1)[1])
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=10) as reply:
            assert reply.status == 200
        server = psutil.Process(proc.pid).children(recursive=True)
        listening = [c.laddr for p in server for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
        assert listening and {a.ip for a in listening} == {"127.0.0.1"} and port in {a.port for a in listening}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) in (0, 130)
        time.sleep(0.2)
        assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in server)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
