"""Downloads (pooch) from a local HTTP server standing in for the official URL."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import threading
import zipfile
from pathlib import Path

import pytest

from recvae.data import load_interactions, registry
from simcache.cli.app import app

U_DATA = "".join(f"{u}\t{i}\t{1 + (u * i) % 5}\t{880000000 + u * 100 + i}\n" for u in range(1, 40) for i in range(1, 25))


@pytest.fixture
def server(tmp_path, monkeypatch):
    """Serve tmp_path/www on 127.0.0.1; yields (base_url, folder, list of requested paths)."""
    www = tmp_path / "www"
    www.mkdir()
    hits: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def do_GET(self):
            hits.append(self.path)
            super().do_GET()

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", www, hits
    finally:
        httpd.shutdown()
        httpd.server_close()


def _official_zip(www: Path) -> tuple[Path, str]:
    z = www / "ml-100k.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ml-100k/u.data", U_DATA)
        zf.writestr("ml-100k/README", "fixture")
    return z, hashlib.md5(z.read_bytes()).hexdigest()


def _point_at(monkeypatch, name: str, url: str, checksum: str | None) -> None:
    spec = dataclasses.replace(registry.REGISTRY[name], url=url, checksum=checksum)
    monkeypatch.setitem(registry.REGISTRY, name, spec)


def test_download_verify_parse_and_reuse(server, monkeypatch, cache, runner):
    base, www, hits = server
    z, md5 = _official_zip(www)
    _point_at(monkeypatch, "ml100k", f"{base}/ml-100k.zip", f"md5:{md5}")
    result = runner.invoke(app, ["data", "fetch", "ml100k"])
    assert result.exit_code == 0, result.output
    assert (cache / "downloads" / "ml-100k.zip").read_bytes() == z.read_bytes()
    assert hits == ["/ml-100k.zip"]
    df = load_interactions("ml100k")
    assert len(df) == 39 * 24 and hits == ["/ml-100k.zip"]  # cached: not downloaded again
    from recvae.data import interactions_manifest

    src = interactions_manifest("ml100k")["source"]
    assert src["origin"] == "download" and src["verified_checksums"] == [f"md5:{md5}"]


def test_download_checksum_mismatch(server, monkeypatch, leftovers, runner):
    base, www, _ = server
    _official_zip(www)
    _point_at(monkeypatch, "ml100k", f"{base}/ml-100k.zip", "md5:0e33842e24a9c977be4e0107933c0723")
    result = runner.invoke(app, ["data", "prepare", "ml100k"])
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line and "checksum mismatch" in line and "ml-100k.zip" in line
    assert leftovers() == []


def test_download_failure(server, monkeypatch, leftovers, runner):
    base, _, _ = server
    _point_at(monkeypatch, "ml100k", f"{base}/missing.zip", None)
    result = runner.invoke(app, ["data", "fetch", "ml100k"])
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line and "download failed" in line and "missing.zip" in line and "--data-dir" in line
    assert leftovers() == []


def test_truncated_download_without_checksum_is_removed(server, monkeypatch, leftovers, runner):
    """No published checksum (like MSD): a truncated archive is detected when read, and deleted."""
    base, www, _ = server
    z, _ = _official_zip(www)
    data = z.read_bytes()
    z.write_bytes(data[: len(data) // 2])
    _point_at(monkeypatch, "ml100k", f"{base}/ml-100k.zip", None)
    result = runner.invoke(app, ["data", "fetch", "ml100k"])
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line and "truncated or corrupt zip" in line and "ml-100k.zip" in line
    assert leftovers() == []
