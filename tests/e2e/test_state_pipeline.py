"""Camera state through the whole local chain: S3 put -> SQS -> worker -> handler -> state + events."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from functions.state.smoothing import IDLE
from functions.state.state_item import readable_state
from functions.stores.results import deserialize_item
from tests.fixtures.tiny_model import COLOUR_LABELS

pytestmark = pytest.mark.e2e

COLOURS = {label: colour for colour, label in COLOUR_LABELS.items()}


def solid_jpeg(label: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), COLOURS[label]).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def test_frames_through_the_worker_become_state_and_one_published_event(local_stack, run_worker):
    s3 = local_stack.client("s3")
    # red = bus for the tiny model; a bad object in the middle is rejected and ignored by the state
    labels = ["empty", "bus", "bus", "bus", "bus"]
    for second, label in enumerate(labels):
        key = f"{local_stack.names.frames_prefix}cam-05/20261122T1200{second:02d}000Z.jpg"
        s3.put_object(Bucket=local_stack.names.bucket, Key=key, Body=solid_jpeg(label))
    s3.put_object(
        Bucket=local_stack.names.bucket,
        Key=f"{local_stack.names.frames_prefix}cam-05/20261122T120010000Z.jpg",
        Body=b"not an image",
    )
    run_worker()

    ddb = local_stack.client("dynamodb")
    items = [
        deserialize_item(item)
        for item in ddb.query(
            TableName=local_stack.names.state_table,
            KeyConditionExpression="camera_id = :c",
            ExpressionAttributeValues={":c": {"S": "cam-05"}},
        )["Items"]
    ]
    state = readable_state(next(item for item in items if item["item"] == "state"))
    assert state["state"] == "bus" and state["since"] == "2026-11-22T12:00:01.000Z"
    # only ok frames count: the rejected one is not in the window
    assert [f["t"] for f in state["window"]] == [f"2026-11-22T12:00:{s:02d}.000Z" for s in range(len(labels))]
    events = [item for item in items if item["item"].startswith("event#")]
    assert [(e["previous_state"], e["state"]) for e in events] == [(IDLE, IDLE), (IDLE, "bus")]

    sqs = local_stack.client("sqs")
    messages = sqs.receive_message(QueueUrl=local_stack.events_queue_url, MaxNumberOfMessages=10)["Messages"]
    details = [json.loads(m["Body"])["detail"] for m in messages]
    assert [(d["camera_id"], d["state"]) for d in details] == [("cam-05", "bus")]
    # The message says when the bus started as known at the change; the frames of one batch are
    # committed concurrently, so a frame arriving after it can still move the start earlier:
    # the event item (above: since 12:00:01) has the final start.
    bus_frames = {f"2026-11-22T12:00:0{s}.000Z" for s in range(1, 5)}
    assert details[0]["start"] in bus_frames and details[0]["start"] >= state["since"]
