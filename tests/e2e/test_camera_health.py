"""Camera health through the whole local chain: a camera gets covered, the bus says so once."""

from __future__ import annotations

import io
import json

import pytest

from functions.stores.camera_configs import camera_config_key
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


def test_a_covered_camera_with_regions_has_its_health_in_its_state_and_one_event(local_stack, run_worker):
    """A camera with regions (none named default) decodes the whole frame beside its crops: the
    health rides in its ``state`` (a health-only write), its regions keep their own states."""
    camera, s3, bucket = "cam-78", local_stack.client("s3"), local_stack.names.bucket
    regions = {"regions": [{"name": "left", "box": [0, 0, 0.5, 1]}, {"name": "right", "box": [0.5, 0, 1, 1]}]}
    s3.put_object(Bucket=bucket, Key=camera_config_key(camera), Body=json.dumps(regions).encode())
    for index in range(8):
        key = f"{local_stack.names.frames_prefix}{camera}/20261122T1200{index:02d}000Z.jpg"
        s3.put_object(Bucket=bucket, Key=key, Body=frame_jpeg(index, "covered" if index >= 4 else None))
    run_worker()

    source = StateSource(local_stack.endpoint_url, local_stack.names.state_table, "")
    states = {state.get("region") or "default": state for state in camera_states(source, regions=True)}
    assert sorted(states) == ["default", "left", "right"]
    assert (states["default"]["health"], states["default"]["health_since"]) == (
        "covered",
        "2026-11-22T12:00:04.000Z",
    )
    assert states["default"]["health_reference"]["frames"] == 4 and states["default"]["window"] == []
    assert "health" not in states["left"] and len(states["left"]["window"]) > 0

    sqs = local_stack.client("sqs")
    messages = sqs.receive_message(
        QueueUrl=local_stack.health_events_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    )["Messages"]
    (detail,) = [json.loads(m["Body"])["detail"] for m in messages]
    assert (detail["event_id"], detail["previous_health"], detail["health"]) == (
        f"{camera}#health#1",
        "ok",
        "covered",
    )
    assert detail["detected_at"] == "2026-11-22T12:00:06.000Z"
