"""A swapped model in S3 (with a manifest that matches it) is refused by the pinned function.

Whoever can write ``models/`` can replace model.onnx and manifest.json together; the manifest's
own sha256 check then passes. The deployment's pin (CAMSORT_MODEL_SHA256, set from the upload
step) is what refuses it: the function never classifies, every message is retried by SQS and
then dead-lettered, and no result is written by the wrong model.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import onnx
import pytest
from click.testing import CliRunner

from camsort.cli import main as camsort_main
from functions import env
from functions.frames.manifest import (
    MANIFEST_FILENAME,
    MODEL_FILENAME,
    read_manifest,
    sha256_file,
    write_manifest,
)
from infra.demo.accounting import DeliveryTracker, account, notification_objects, scan_results
from infra.demo.simulator import simulate_cameras
from infra.deploy.topology import MAX_RECEIVE_COUNT
from infra.local.stack import pinned_sha256
from tests.fixtures.aws import unique_name
from tests.fixtures.tiny_model import write_tiny_model

pytestmark = pytest.mark.e2e


def swapped_model(directory):
    """A different, internally consistent artifact: other weights, its own correct manifest."""
    write_tiny_model(directory)
    model = onnx.load(directory / MODEL_FILENAME)
    model.producer_name = "not-the-deployed-model"
    onnx.save(model, directory / MODEL_FILENAME)
    manifest = read_manifest(directory)
    write_manifest(
        directory, dataclasses.replace(manifest, model_sha256=sha256_file(directory / MODEL_FILENAME))
    )
    return directory


def test_a_swapped_model_with_a_matching_manifest_is_refused(
    local_stack, stack_model_uri, run_worker, tmp_path
):
    pin = pinned_sha256(stack_model_uri)
    assert pin is not None  # the upload step recorded the sha256 the function is pinned to

    attacker = swapped_model(tmp_path / "swapped")
    assert read_manifest(attacker).model_sha256 != pin
    bucket, prefix = stack_model_uri[len("s3://") :].split("/", 1)
    s3 = local_stack.client("s3")
    for name in (MODEL_FILENAME, MANIFEST_FILENAME):
        s3.upload_file(str(attacker / name), bucket, prefix + name)

    manifest = simulate_cameras(local_stack, cameras=1, frames_per_camera=2, seed=11)
    tracker = DeliveryTracker()
    deliveries: Counter[str] = Counter()

    def observe(records, failed_ids):
        tracker.observe(records, failed_ids)
        for record in records:
            assert record["messageId"] in failed_ids  # nothing is ever acknowledged
            deliveries.update(key for key, _ in notification_objects(record["body"]))

    # As on Lambda: the init phase fails, every invocation retries it and fails.
    stats = run_worker(observer=observe, retry_init_errors=True)

    assert stats.failed_batches >= MAX_RECEIVE_COUNT and stats.deleted == 0
    refused = [error for error in stats.errors if "ModelNotPinnedError" in error]
    assert f"but this deployment pins {pin} ({env.MODEL_SHA256})" in refused[0]
    # On a busy machine a re-init (download + refusal) can overrun the 1 s test timeout: the
    # batch fails as a timeout instead, which is still a failed, redelivered batch.
    assert all(error in refused or "over the 1s timeout" in error for error in stats.errors), stats.errors
    assert scan_results(local_stack) == []
    keys = sorted(o.key for o in manifest.objects)
    assert all(deliveries[key] == MAX_RECEIVE_COUNT for key in keys), deliveries
    result = account(local_stack, manifest, tracker.snapshot())
    assert sorted(result.dead_lettered) == keys
    assert result.lost == []


def test_upload_model_uploads_both_files_and_prints_the_pin(moto_server, s3_client, tiny_model_dir):
    bucket = unique_name("camsort-frames-upload")
    s3_client.create_bucket(Bucket=bucket)
    result = CliRunner().invoke(
        camsort_main,
        [
            "upload-model",
            str(tiny_model_dir),
            "--bucket",
            bucket,
            "--version",
            "v7",
            "--endpoint-url",
            moto_server.endpoint_url,
        ],
    )
    assert result.exit_code == 0, result.output
    sha = read_manifest(tiny_model_dir).model_sha256
    assert f'--param="modelVersion=v7" --param="modelSha256={sha}"' in result.output
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(keys) == ["models/v7/manifest.json", "models/v7/model.onnx"]


def test_upload_model_refuses_an_inconsistent_artifact(moto_server, s3_client, tampered_model_dir):
    bucket = unique_name("camsort-frames-upload")
    s3_client.create_bucket(Bucket=bucket)
    result = CliRunner().invoke(
        camsort_main,
        [
            "upload-model",
            str(tampered_model_dir),
            "--bucket",
            bucket,
            "--endpoint-url",
            moto_server.endpoint_url,
        ],
    )
    assert result.exit_code != 0
    assert "does not match" in result.output
    assert "Contents" not in s3_client.list_objects_v2(Bucket=bucket)
