"""Starting the dashboard: ``streamlit run`` of :mod:`simcache.dashboard.app` on 127.0.0.1 and a free port.

:func:`start` checks the inputs first (a bad path is a :class:`~recvae.errors.UserError` before
anything starts), launches the Streamlit server as a child process bound to the loopback address
only, and returns once the server answers its health check. :func:`serve` is what
``simcache dashboard`` runs: start, print the URL, wait until interrupted.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from recvae.errors import UserError
from simcache.dashboard.sources import INPUTS_ENV, Sources, detect

HOST = "127.0.0.1"
APP = Path(__file__).with_name("app.py")
START_TIMEOUT_S = 60.0


def free_port(host: str = HOST) -> int:
    """A TCP port that is free on ``host`` now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def require_streamlit() -> None:
    """Refuse with an install hint when the ``dashboard`` extra is missing."""
    import importlib.util

    if importlib.util.find_spec("streamlit") is None:
        raise UserError("the dashboard needs Streamlit: pip install -e \".[dashboard]\"")


def streamlit_command(port: int) -> list[str]:
    """The ``streamlit run`` command line: loopback only, headless, no telemetry, no file watching."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", HOST, "--server.port", str(port), "--server.headless", "true",
        "--server.fileWatcherType", "none", "--server.runOnSave", "false",
        "--browser.gatherUsageStats", "false", "--browser.serverAddress", HOST,
        "--client.toolbarMode", "minimal", "--global.developmentMode", "false",
        "--logger.level", "warning",
    ]


@dataclass
class Dashboard:
    """A running dashboard server (a child process); :meth:`stop` ends it."""

    process: subprocess.Popen
    port: int
    sources: Sources

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server (kill it if it does not stop within ``timeout`` seconds)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "Dashboard":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(paths: list[str | Path], *, port: int | None = None, timeout: float = START_TIMEOUT_S,
          quiet: bool = True) -> Dashboard:
    """Detect the inputs, start the server and wait until it is healthy (see the module docstring).

    ``port``: a port of your own (default: a free one). ``quiet`` sends the server's own output
    to /dev/null (its errors still go to stderr).
    """
    require_streamlit()
    found = detect(paths)
    port = free_port() if port is None else int(port)
    if not 0 < port < 65536:
        raise UserError(f"port must be between 1 and 65535, got {port}")
    env = dict(os.environ)
    env[INPUTS_ENV] = json.dumps([str(p) for p in found.inputs])
    env.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    process = subprocess.Popen(streamlit_command(port), env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL if quiet else None)
    board = Dashboard(process, port, found)
    try:
        _wait_healthy(board, timeout)
    except BaseException:
        board.stop()
        raise
    return board


def _wait_healthy(board: Dashboard, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    health = f"{board.url}/_stcore/health"
    while time.monotonic() < deadline:
        code = board.process.poll()
        if code is not None:
            raise UserError(f"the dashboard server exited with code {code} before it started "
                            f"(is port {board.port} in use?)")
        try:
            with urllib.request.urlopen(health, timeout=2) as reply:  # noqa: S310 - loopback URL we built
                if reply.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.2)
    raise UserError(f"the dashboard server did not answer on {board.url} within {timeout:.0f} s")


def serve(paths: list[str | Path], *, port: int | None = None, echo: Callable[[str], None] = print) -> None:
    """Start the dashboard, print what it shows and its URL, and wait (Ctrl-C or SIGTERM stops it)."""
    import signal
    import threading

    def interrupt(*_args: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, interrupt)  # stop the server too, not only this process
    board = start(paths, port=port)
    echo(f"dashboard: {board.sources.describe()}")
    echo(f"open {board.url}  (Ctrl-C to stop)")
    try:
        board.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()
