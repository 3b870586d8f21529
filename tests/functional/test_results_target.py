"""`camsort results` without options finds the running demo, or says what to do."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from functions.errors import ConfigurationError
from infra.local.moto_server import free_port
from infra.local.running import stop_demo_server, write_state
from infra.ops.results_query import resolve_target


def test_results_without_a_running_demo_says_what_to_do(tmp_path):
    with pytest.raises(ConfigurationError, match="camsort demo --keep-running"):
        resolve_target(None, None, None, cache_dir=tmp_path)
    # A state file whose server is gone.
    write_state(tmp_path / "demo", f"http://127.0.0.1:{free_port()}", "camsort-results-local", pid=None)
    with pytest.raises(ConfigurationError, match="is not answering"):
        resolve_target(None, None, None, cache_dir=tmp_path)
    assert stop_demo_server(tmp_path) is False  # recorded pid is not a moto server: nothing signalled


class _AnswersWithErrors(BaseHTTPRequestHandler):
    """A server that is up but fails every request, as moto's /moto-api/data.json does (HTTP 500)
    once the demo's bucket holds superseded versions."""

    def do_GET(self):
        self.send_error(500)

    def log_message(self, *args):
        pass


def test_a_demo_server_that_answers_with_an_error_is_still_running(tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _AnswersWithErrors)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_port}"
        write_state(tmp_path / "demo", endpoint, "camsort-results-local", pid=None)
        target = resolve_target(None, None, None, cache_dir=tmp_path)
        assert (target.endpoint_url, target.table) == (endpoint, "camsort-results-local")
    finally:
        server.shutdown()
        server.server_close()
