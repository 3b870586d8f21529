"""`camsort results`: its options -> a time range and a table to query (no AWS involved)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from camsort.commands.results import parse_duration, parse_time, time_range
from functions.errors import ConfigurationError
from infra.local.running import write_state
from infra.ops.results_query import resolve_target

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


def test_durations_and_times_parse():
    assert parse_duration("10m") == timedelta(minutes=10)
    assert parse_duration("1.5h") == timedelta(hours=1.5)
    assert parse_time("2026-11-22T07:00:00Z", "--since") == datetime(2026, 11, 22, 7, tzinfo=UTC)
    assert parse_time("2026-11-22T07:00:00", "--since") == datetime(2026, 11, 22, 7, tzinfo=UTC)
    with pytest.raises(ConfigurationError, match="--last '10 minutes'"):
        parse_duration("10 minutes")
    with pytest.raises(ConfigurationError, match="--until 'yesterday'"):
        parse_time("yesterday", "--until")


def test_the_range_comes_from_last_or_since_and_until():
    assert time_range(None, None, "30m", NOW) == (NOW - timedelta(minutes=30), None)
    assert time_range("2026-11-22T07:00:00Z", "2026-11-22T07:30:00Z", None, NOW) == (
        datetime(2026, 11, 22, 7, tzinfo=UTC),
        datetime(2026, 11, 22, 7, 30, tzinfo=UTC),
    )
    assert time_range(None, None, None, NOW) == (None, None)
    with pytest.raises(ConfigurationError, match="--last and --since"):
        time_range("2026-11-22T07:00:00Z", None, "1h", NOW)
    with pytest.raises(ConfigurationError, match=r"starts \(2026-11-22T07:30:00Z\) after it ends"):
        time_range("2026-11-22T07:30:00Z", "2026-11-22T07:00:00Z", None, NOW)


def test_explicit_table_and_endpoint_win_over_the_state_file(tmp_path):
    write_state(tmp_path / "demo", "http://127.0.0.1:1", "from-state", pid=None)
    target = resolve_target("http://127.0.0.1:2", "camsort-results-given", "eu-west-1", cache_dir=tmp_path)
    assert (target.endpoint_url, target.table, target.region) == (
        "http://127.0.0.1:2",
        "camsort-results-given",
        "eu-west-1",
    )
    # An endpoint alone: the recorded demo's stage names the table.
    assert (
        resolve_target("http://127.0.0.1:2", None, None, cache_dir=tmp_path).table
        == "camsort-results-from-state"
    )
    # Another stage than the demo's, with no endpoint: that stage on AWS.
    other = resolve_target(None, None, "eu-west-1", cache_dir=tmp_path, stage="prod")
    assert (other.endpoint_url, other.table) == (None, "camsort-results-prod")


def test_a_state_file_without_a_stage_takes_it_from_its_table(tmp_path):
    from infra.local.running import recorded_demo, state_path

    state_path(tmp_path).parent.mkdir(parents=True)
    state_path(tmp_path).write_text(
        '{"endpoint_url": "http://127.0.0.1:1", "table": "camsort-results-old", "region": "us-east-1", "pid": 7}'
    )
    demo = recorded_demo(tmp_path)
    assert demo is not None and (demo.stage, demo.table, demo.pid) == ("old", "camsort-results-old", 7)
