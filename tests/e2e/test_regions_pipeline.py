"""Regions through the whole local chain, under the function's derived role: a camera's regions
change while the worker runs, and the next frames are answered with the new ones, no redeploy.

The worker's container stays up throughout (one init): it reads ``cameras/cam-r.json`` from the
model bucket by conditional GET every CAMSORT_CAMERA_CONFIG_TTL_SECONDS (1 s here), and answers
the ``bay`` regions with the named model ``bay`` (models/bay/<version>/, pinned by sha256).
"""

from __future__ import annotations

import json
import time

import pytest

from functions import env
from functions.frames.manifest import read_manifest
from functions.frames.outputs import region_sort_key
from functions.state.camera_state import CameraStates
from functions.state.smoothing import SmoothingConfig
from functions.stores.camera_configs import camera_config_key
from functions.stores.results import ResultsTable
from infra.local.stack import pinned_sha256, upload_model
from infra.local.worker import SqsWorker
from tests.fixtures.local_stack import worker_environment
from tests.fixtures.tiny_model import write_tiny_model
from tests.functional.test_regions_function import EXPECTED, REGIONS, quadrants

pytestmark = pytest.mark.e2e

TTL_S = 1


def wait_for(read, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = read()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"nothing after {timeout_s}s")


def test_a_change_of_regions_is_picked_up_within_one_ttl_without_a_redeploy(
    local_stack, stack_model_uri, tmp_path
):
    bay_dir = write_tiny_model(tmp_path / "bay", ["occupied", "free", "dark"], "bay-1")
    bay_uri = upload_model(local_stack, bay_dir, version=f"bay/{read_manifest(bay_dir).model_version}")
    named = {"bay": {"uri": bay_uri, "sha256": pinned_sha256(bay_uri)}}
    environment = worker_environment(
        local_stack,
        stack_model_uri,
        tmp_path,
        extra={env.NAMED_MODELS: json.dumps(named), env.CAMERA_CONFIG_TTL_SECONDS: str(TTL_S)},
    )
    s3, bucket = local_stack.client("s3"), local_stack.names.bucket
    table = ResultsTable(local_stack.names.table, local_stack.client("dynamodb"))

    def upload(second: int) -> dict:
        key = f"{local_stack.names.frames_prefix}cam-r/20261122T1200{second:02d}000Z.jpg"
        etag = s3.put_object(Bucket=bucket, Key=key, Body=quadrants())["ETag"].strip('"')
        return wait_for(lambda: table.get(f"{bucket}/{key}", etag))

    def set_regions(config: dict) -> None:
        s3.put_object(Bucket=bucket, Key=camera_config_key("cam-r"), Body=json.dumps(config).encode())
        time.sleep(TTL_S + 0.5)  # one TTL: every container has re-read it by then

    worker = SqsWorker(local_stack, environment)
    with worker:
        whole = upload(0)  # no object yet: the whole frame, today's item
        assert (whole["label"], "regions" in whole) == ("unknown", False)  # the four colours average to grey

        set_regions(REGIONS)
        frame = upload(1)
        assert frame["regions"] == EXPECTED and "label" not in frame
        region = table.get(frame["object_id"], region_sort_key(frame["object_version"], "q2"))
        assert (region["label"], region["model_name"], region["model_version"]) == ("free", "bay", "bay-1")

        set_regions({"regions": [REGIONS["regions"][0]]})  # one region left
        assert upload(2)["regions"] == {"q1": "bus"}

        s3.delete_object(Bucket=bucket, Key=camera_config_key("cam-r"))  # back to the whole frame
        time.sleep(TTL_S + 0.5)
        assert upload(3)["label"] == "unknown"
    stats = worker.stats
    assert (stats.failed_batches, stats.reported_failures, stats.errors) == (0, 0, [])
    # One camera index entry per frame, whatever the regions were.
    assert len(table.query_camera("cam-r")) == 4
    # q1 answered red (bus) in frames 1 and 2: two in a row, its own state and a published change.
    states = CameraStates(local_stack.names.state_table, local_stack.client("dynamodb"), SmoothingConfig())
    assert (states.load("cam-r", "q1").state, states.load("cam-r", "q2").state) == ("bus", "none")
    sqs = local_stack.client("sqs")
    messages = sqs.receive_message(QueueUrl=local_stack.events_queue_url, MaxNumberOfMessages=10)["Messages"]
    details = [json.loads(message["Body"])["detail"] for message in messages]
    assert [(d["event_id"], d["region"], d["state"]) for d in details] == [("cam-r#q1#2", "q1", "bus")]
