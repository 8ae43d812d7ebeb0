"""Fixtures: a local HTTP file server and a private download cache."""

import functools
import http.server
import threading

import pytest


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture
def file_server(tmp_path):
    """Serves `root` on 127.0.0.1; yields `(root, base_url, stop)`."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop():
        server.shutdown()
        server.server_close()

    yield root, f"http://127.0.0.1:{server.server_address[1]}/", stop
    if thread.is_alive():
        stop()


@pytest.fixture
def weights_cache(tmp_path, monkeypatch):
    """An empty cache for downloads and conversions."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("KERAS_MVF_CACHE_DIR", str(cache))
    return cache
