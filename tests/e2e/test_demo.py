"""`camsort demo` end to end with tiny numbers, then `camsort results` on what it wrote."""

from __future__ import annotations

import io
import json
import re
import uuid

import pytest
from click.testing import CliRunner

from camsort.cli import main
from infra.deploy.topology import StackNames


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
    # the regions camera: named models on the tiny model's backbone, its regions, its frames
    text = " ".join(demo.output.split())
    assert "Regions camera lot-01: 7 regions" in text
    assert "regions of lot-01 against the ground truth" in text and "event precision" in text
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    # 2 cameras x 3 frames + 4 bad objects; each ends with exactly one result; none lost.
    assert (report["uploaded"], report["frames"], report["bad_objects"]) == (10, 6, 4)
    assert (report["results"], report["ok"], report["rejected"]) == (10, 6, 4)
    assert report["rejected_by_reason"] == {
        "empty": 1,
        "not_jpeg_or_png": 1,
        "too_many_bytes": 1,
        "truncated_or_corrupt": 1,
    }
    assert (report["lost"], report["dead_lettered"], report["unexpected"]) == ([], [], [])
    assert report["duplicates_suppressed"] == 1 and report["duplicate_notifications"] == 1
    assert report["exit_code"] == 0
    # the story: events scored against the simulator's ground truth, and the rule sweep
    assert "event precision" in demo.output and "smoothed state accuracy" in demo.output
    assert "(Frigate)" in demo.output  # the rule sweep
    # the tampered cameras (two cameras: both, from the second round): scored against the truth
    assert "tampered cameras: time to detect" in demo.output
    health = json.loads((tmp_path / "demo" / "health.json").read_text())
    assert [(d["camera_id"], d["tamper"]) for d in health["detections"]] == [
        ("cam-01", "covered"),
        ("cam-02", "moved"),
    ]
    assert health["healthy_frames"] == 2  # the first round of each camera
    # the last step: every result exported to Parquet and counted by `camsort stats` on DuckDB
    assert "results archive: 10 results exported to Parquet" in demo.output
    assert "camsort stats" in demo.output and "(duckdb)" in demo.output
    assert re.search(r"cam-01\s*│\s*rejected\s*│\s*2\s*│", demo.output)  # its truncated + text uploads

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


@pytest.mark.e2e
@pytest.mark.slow
def test_demo_runs_the_real_pipeline_model(moto_server, trained_model_dir, tmp_path):
    """The ResNet50 + LightGBM model from training.pipeline, through the worker and the handler."""
    from rich.console import Console

    from functions.frames.manifest import UNKNOWN_LABEL, read_manifest
    from infra.demo.run import run_demo
    from infra.demo.settings import DemoSettings

    output = io.StringIO()
    outcome = run_demo(
        DemoSettings(
            cameras=2,
            frames_per_camera=3,
            frames_per_second=0,
            model_dir=trained_model_dir,
            regions=False,  # the regions camera: tests/e2e/test_demo_regions.py
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
