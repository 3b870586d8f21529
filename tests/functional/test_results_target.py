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
    write_state(tmp_path / "demo", f"http://127.0.0.1:{free_port()}", "local", pid=None)
    with pytest.raises(
        ConfigurationError,
        match=r"is not running \(stage local at .*\); start one with `camsort demo --keep-running`",
    ):
        resolve_target(None, None, None, cache_dir=tmp_path)
    assert stop_demo_server(tmp_path) is False  # recorded pid is not a moto server: nothing signalled


class _AnswersWithErrors(BaseHTTPRequestHandler):
    """A server that is up but answers every request with HTTP 500: whatever it is, it is not
    the demo's stack. (Liveness is a real DynamoDB call, not a page: moto's /moto-api/data.json
    answers 500 after every demo while its APIs work; tests/e2e/test_tour.py runs on that.)"""

    def do_GET(self):
        self.send_error(500)

    do_POST = do_GET

    def log_message(self, *args):
        pass


def test_a_server_that_only_answers_errors_is_not_taken_for_the_demo(tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _AnswersWithErrors)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_port}"
        write_state(tmp_path / "demo", endpoint, "local", pid=None)
        with pytest.raises(
            ConfigurationError, match=f"the server at {endpoint} answers, but not as the demo"
        ):
            resolve_target(None, None, None, cache_dir=tmp_path)
    finally:
        server.shutdown()
        server.server_close()


def test_a_new_kept_running_demo_forgets_a_record_whose_server_is_gone(tmp_path):
    import io

    from rich.console import Console

    from infra.local.running import recorded_demo, refuse_second_demo

    write_state(tmp_path / "demo", f"http://127.0.0.1:{free_port()}", "local", pid=None)
    out = io.StringIO()
    refuse_second_demo(tmp_path, Console(file=out, width=200))
    assert "it is no longer running" in out.getvalue()
    assert recorded_demo(tmp_path) is None
