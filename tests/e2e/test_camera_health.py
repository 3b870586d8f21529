"""Camera health through the whole local chain: a camera gets covered, the bus says so once."""

from __future__ import annotations

import io
import json

import pytest

from infra.ops.camera_views import StateSource, camera_states
from training.data.scene_tamper import view_frame, view_seed

pytestmark = pytest.mark.e2e

CAMERA = "cam-77"


def frame_jpeg(index: int, tamper: str | None = None) -> bytes:
    image = view_frame(view_seed(0, CAMERA), "empty", index, 320, 180, tamper=tamper)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_a_covered_camera_emits_one_health_event(local_stack, run_worker):
    s3, bucket = local_stack.client("s3"), local_stack.names.bucket
    # 4 frames of the street, then 4 with the lens covered (3 in a row make it covered)
    for index in range(8):
        key = f"{local_stack.names.frames_prefix}{CAMERA}/20261122T1200{index:02d}000Z.jpg"
        s3.put_object(Bucket=bucket, Key=key, Body=frame_jpeg(index, "covered" if index >= 4 else None))
    run_worker()

    (state,) = camera_states(StateSource(local_stack.endpoint_url, local_stack.names.state_table, ""))
    assert (state["health"], state["health_since"]) == ("covered", "2026-11-22T12:00:04.000Z")
    assert state["health_reference"]["frames"] == 4  # learned from the street only

    sqs = local_stack.client("sqs")
    queue = local_stack.health_events_queue_url
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    (message,) = [json.loads(m["Body"]) for m in messages]
    assert message["detail-type"] == "camsort.camera-health-changed" and message["source"] == "camsort"
    detail = message["detail"]
    assert (detail["camera_id"], detail["previous_health"], detail["health"]) == (CAMERA, "ok", "covered")
    assert (detail["since"], detail["detected_at"]) == (
        "2026-11-22T12:00:04.000Z",
        "2026-11-22T12:00:06.000Z",
    )
    assert detail["event_id"] == f"{CAMERA}#health#1" and detail["measures"]["contrast"] < 8
    # the state changes' queue carries state changes only
    state_messages = sqs.receive_message(QueueUrl=local_stack.events_queue_url, MaxNumberOfMessages=10)
    assert all(
        json.loads(m["Body"])["detail-type"] == "camsort.state-changed"
        for m in state_messages.get("Messages", [])
    )
