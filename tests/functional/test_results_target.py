"""`camsort results` without options finds the running demo, or says what to do."""

from __future__ import annotations

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
