"""`camsort demo` end to end with tiny numbers, then `camsort results` on what it wrote."""

from __future__ import annotations

import io
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from camsort.cli import main
from camsort.commands.results import parse_duration, parse_time
from functions.errors import ConfigurationError
from infra.demo_state import stop_demo_server, write_state
from infra.moto_server import free_port
from infra.results_query import resolve_target
from infra.topology import StackNames


@pytest.mark.e2e
def test_demo_accounts_for_every_upload_and_results_reads_them(moto_server, tiny_model_dir, tmp_path):
    stage = f"demo-{uuid.uuid4().hex[:8]}"
    runner = CliRunner()
    demo = runner.invoke(
        main,
        ["demo", "--model", str(tiny_model_dir), "--cameras", "2", "--frames", "3", "--rate", "0",
         "--endpoint-url", moto_server.endpoint_url, "--stage", stage, "--cache-dir", str(tmp_path)],
    )  # fmt: skip
    assert demo.exit_code == 0, demo.output
    assert "randomly initialised".upper() in demo.output.upper()  # the tiny model says weights=none
    summary = {
        match.group(1).strip(): int(match.group(2))
        for match in re.finditer(r"^│ ([a-zA-Z_ ]+?)\s*│\s*(\d+) │", demo.output, flags=re.MULTILINE)
    }
    # 2 cameras x 3 frames + 4 bad objects; each ends with exactly one result; none lost.
    assert summary["uploaded objects"] == 10
    assert summary["results"] == 10
    assert summary["rejected"] == 4
    assert summary["lost"] == 0
    assert summary["DLQ"] == 0
    assert summary["duplicates suppressed"] == 1
    # the story: events scored against the simulator's ground truth, and the rule sweep
    assert "event precision" in demo.output and "smoothed state accuracy" in demo.output
    assert "(Frigate)" in demo.output  # the rule sweep

    results = runner.invoke(
        main,
        ["results", "--camera", "cam-01", "--last", "1h", "--endpoint-url", moto_server.endpoint_url,
         "--table", StackNames.for_stage(stage).table, "--json"],
    )  # fmt: skip
    assert results.exit_code == 0, results.output
    items = json.loads(results.output)
    # cam-01: its 3 frames + the truncated and the text-file uploads (bad objects go round-robin).
    assert len(items) == 5
    assert {item["camera_id"] for item in items} == {"cam-01"}
    assert [item["captured_at"] for item in items] == sorted(item["captured_at"] for item in items)
    assert sorted(item["reason"] for item in items if item["status"] == "rejected") == [
        "not_jpeg_or_png",
        "truncated_or_corrupt",
    ]

    rejected_only = runner.invoke(
        main,
        ["results", "--camera", "cam-01", "--last", "1h", "--status", "rejected", "--limit", "1",
         "--endpoint-url", moto_server.endpoint_url, "--table", StackNames.for_stage(stage).table, "--json"],
    )  # fmt: skip
    assert [item["status"] for item in json.loads(rejected_only.output)] == ["rejected"]


def test_durations_and_times_parse():
    assert parse_duration("10m") == timedelta(minutes=10)
    assert parse_duration("1.5h") == timedelta(hours=1.5)
    assert parse_time("2026-11-22T07:00:00Z", "--since") == datetime(2026, 11, 22, 7, tzinfo=UTC)
    assert parse_time("2026-11-22T07:00:00", "--since") == datetime(2026, 11, 22, 7, tzinfo=UTC)
    with pytest.raises(ConfigurationError, match="--last '10 minutes'"):
        parse_duration("10 minutes")
    with pytest.raises(ConfigurationError, match="--until 'yesterday'"):
        parse_time("yesterday", "--until")


def test_results_without_a_running_demo_says_what_to_do(tmp_path):
    with pytest.raises(ConfigurationError, match="camsort demo --keep-running"):
        resolve_target(None, None, None, cache_dir=tmp_path)
    # A state file whose server is gone.
    write_state(tmp_path / "demo", f"http://127.0.0.1:{free_port()}", "camsort-results-local", pid=None)
    with pytest.raises(ConfigurationError, match="is not answering"):
        resolve_target(None, None, None, cache_dir=tmp_path)
    assert stop_demo_server(tmp_path) is False  # recorded pid is not a moto server: nothing signalled


def test_explicit_table_and_endpoint_win_over_the_state_file(tmp_path):
    write_state(tmp_path / "demo", "http://127.0.0.1:1", "camsort-results-from-state", pid=None)
    target = resolve_target("http://127.0.0.1:2", "camsort-results-given", "eu-west-1", cache_dir=tmp_path)
    assert (target.endpoint_url, target.table, target.region) == (
        "http://127.0.0.1:2",
        "camsort-results-given",
        "eu-west-1",
    )


@pytest.mark.e2e
@pytest.mark.slow
def test_demo_runs_the_real_pipeline_model(moto_server, trained_model_dir, tmp_path):
    """The ResNet50 + LightGBM model from training.pipeline, through the worker and the handler."""
    from rich.console import Console

    from functions.manifest import UNKNOWN_LABEL, read_manifest
    from infra.demo import run_demo
    from infra.demo_settings import DemoSettings

    output = io.StringIO()
    outcome = run_demo(
        DemoSettings(
            cameras=2,
            frames_per_camera=3,
            frames_per_second=0,
            model_dir=trained_model_dir,
            endpoint_url=moto_server.endpoint_url,
            stage=f"demo-real-{uuid.uuid4().hex[:8]}",
            cache_dir=tmp_path,
        ),
        Console(file=output, width=120),
    )
    labels = read_manifest(trained_model_dir).labels
    assert outcome.exit_code == 0
    assert (outcome.account.uploaded, outcome.account.results, outcome.account.lost) == (10, 10, [])
    assert outcome.account.ok == 6 and sum(outcome.account.rejected.values()) == 4
    assert set(outcome.account.labels) <= {*labels, UNKNOWN_LABEL}
    assert outcome.account.unexpected == []
