"""Unfamiliar frames through the local system (moto over HTTP, the real handler under its role),
and `camsort drift` on what the function wrote.

The stack runs the familiar tiny model (tests/fixtures/tiny_model.py): reds, greens and blues are
familiar, a black or a grey frame is not.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from camsort.cli import main
from functions.frames.manifest import UNFAMILIAR_LABEL, read_manifest
from functions.stores.storage import TAG_PREFIX
from infra.demo.accounting import emf_metric_total, scan_results
from infra.local.stack import upload_model
from infra.ops.drift import jensen_shannon
from tests.fixtures.local_stack import LENIENT_TIMEOUT_S
from tests.functional.test_handler import jpeg

# A batch must never be timed out here (the counts are exact): a busy machine is not a Lambda timeout.
pytestmark = [pytest.mark.e2e, pytest.mark.parametrize("function_timeout_s", [LENIENT_TIMEOUT_S])]
FRAMES = {"red": (215, 40, 40), "black": (0, 0, 0), "grey": (128, 128, 128)}


@pytest.fixture
def stack_model_uri(local_stack, familiar_model_dir) -> str:
    """This module's stack runs the familiar tiny model (overrides tests/fixtures/local_stack.py's)."""
    version = read_manifest(familiar_model_dir).model_sha256[:12]
    return upload_model(local_stack, familiar_model_dir, version=version)


@pytest.fixture
def classified(local_stack, run_worker, tmp_path):
    """The three frames uploaded to cam-01 (captured 2026-12-01) and classified: (name -> item, log)."""
    s3, keys = local_stack.client("s3"), {}
    for second, (name, colour) in enumerate(FRAMES.items()):
        keys[name] = f"{local_stack.names.frames_prefix}cam-01/20261201T10000{second}000Z.jpg"
        s3.put_object(Bucket=local_stack.names.bucket, Key=keys[name], Body=jpeg(colour))
    log = tmp_path / "function.log"
    with open(log, "w") as output:
        stats = run_worker(write_tags=True, function_output=output)
    assert (stats.reported_failures, stats.failed_batches) == (0, 0)
    items = {item["key"]: item for item in scan_results(local_stack)}
    return {name: items[key] for name, key in keys.items()}, log


def test_an_unfamiliar_frame_gets_unfamiliar_with_its_distance(local_stack, familiar_model_dir, classified):
    items, log = classified
    threshold = read_manifest(familiar_model_dir).familiarity["threshold"]
    red, black, grey = (items[name] for name in FRAMES)
    assert red["label"] == "bus" and float(red["distance"]) < threshold
    for item in (black, grey):
        assert item["status"] == "ok" and item["label"] == UNFAMILIAR_LABEL
        assert float(item["distance"]) > threshold
        assert item["review_reason"] == "unfamiliar"  # a reason to look at it
        tags = {
            t["Key"]: t["Value"]
            for t in local_stack.client("s3").get_object_tagging(
                Bucket=local_stack.names.bucket, Key=item["key"]
            )["TagSet"]
        }
        assert tags[f"{TAG_PREFIX}label"] == UNFAMILIAR_LABEL
        assert float(tags[f"{TAG_PREFIX}distance"]) == pytest.approx(float(item["distance"]), abs=1e-3)
    # the function's own counts (EMF), from which the serverless.yml alarm divides the rate
    assert emf_metric_total(log, "Unfamiliar") == 2 and emf_metric_total(log, "Classified") == 3


def test_camsort_drift_reads_the_rates_and_the_prior_from_the_stack(local_stack, classified, tmp_path):
    page = tmp_path / "drift.html"
    args = [
        "drift", "--endpoint-url", local_stack.endpoint_url, "--table", local_stack.names.table,
        "--camera", "cam-01", "--since", "2026-12-01T00:00:00Z", "--until", "2026-12-02T00:00:00Z",
        "--html", str(page), "--json",
    ]  # fmt: skip
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    # the prior of the model the results name, found under the stack's models/ prefix
    assert report["prior_source"].startswith(f"s3://{local_stack.names.bucket}/models/")
    assert report["prior"] == pytest.approx({"bus": 1 / 3, "car": 1 / 3, "empty": 1 / 3})
    (row,) = report["rows"]
    assert (row["camera"], row["day"], row["frames"], row["label_counts"]) == (
        "cam-01", "2026-12-01", 3, {"bus": 1},
    )  # fmt: skip
    assert row["unfamiliar_rate"] == pytest.approx(2 / 3) and row["unknown_rate"] == 0.0
    assert row["js"] == pytest.approx(jensen_shannon(np.array([1.0, 0, 0]), np.full(3, 1 / 3)))
    html = page.read_text()
    assert "<h2>cam-01</h2>" in html and "data:image/png;base64," in html
