"""A worker process killed right after a frame's result write: the redelivery completes the side
effects (camera state, its event, the review entry) that the dead invocation never reached.

The kill is the soak's (infra/soak_workers.py, point ``after-result-write``): a real SIGKILL of
a real worker process, the message left in flight, SQS handing it back after the visibility
timeout with ApproximateReceiveCount 2, and a new worker (a new container) taking it.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import signal

import pytest
from PIL import Image

from functions import env
from functions.state.smoothing import IDLE
from functions.state.state_item import STATE_ITEM, readable_state
from functions.stores.results import deserialize_item
from infra.soak.workers import worker_process
from tests.fixtures.local_stack import worker_environment
from tests.fixtures.tiny_model import COLOUR_LABELS

pytestmark = pytest.mark.e2e

COLOURS = {label: colour for colour, label in COLOUR_LABELS.items()}
# Every ok frame is "near its threshold" (|p - 0.5| <= 1): each one is marked for review.
MARK_EVERY_FRAME = {env.REVIEW_MARGIN: "1.0"}


def solid_jpeg(label: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), COLOURS[label]).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def state_items(stack, camera: str) -> list[dict]:
    response = stack.client("dynamodb").query(
        TableName=stack.names.state_table,
        KeyConditionExpression="camera_id = :c",
        ExpressionAttributeValues={":c": {"S": camera}},
        ConsistentRead=True,
    )
    items = [deserialize_item(item) for item in response["Items"]]
    return [readable_state(item) if item["item"] == STATE_ITEM else item for item in items]


def review_items(stack, camera: str) -> dict[str, dict]:
    response = stack.client("dynamodb").query(
        TableName=stack.names.review_table,
        KeyConditionExpression="camera_id = :c",
        ExpressionAttributeValues={":c": {"S": camera}},
        ConsistentRead=True,
    )
    return {item["entry"]: item for item in map(deserialize_item, response["Items"])}


def result_of(stack, key: str) -> dict | None:
    response = stack.client("dynamodb").query(
        TableName=stack.names.table,
        KeyConditionExpression="object_id = :o",
        ExpressionAttributeValues={":o": {"S": f"{stack.names.bucket}/{key}"}},
        ConsistentRead=True,
    )
    items = [deserialize_item(item) for item in response["Items"]]
    assert len(items) <= 1
    return items[0] if items else None


def published(stack) -> list[dict]:
    sqs = stack.client("sqs")
    details = []
    while batch := sqs.receive_message(QueueUrl=stack.events_queue_url, MaxNumberOfMessages=10).get(
        "Messages"
    ):
        details += [json.loads(m["Body"])["detail"] for m in batch]
        sqs.delete_message_batch(
            QueueUrl=stack.events_queue_url,
            Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in batch],
        )
    return details


def kill_after_result_write(stack, environment: dict[str, str], log_path: str) -> int | None:
    """A worker process armed to SIGKILL itself right after its first result write; its exit code."""
    process = multiprocessing.get_context("spawn").Process(
        target=worker_process, args=(stack, environment, ("after-result-write", 1), log_path), daemon=True
    )
    process.start()
    process.join(timeout=180)
    if process.is_alive():  # never armed: stop our own child, and the assertion below says why
        process.kill()
        process.join()
    return process.exitcode


def test_a_crash_right_after_the_result_write_loses_no_side_effect(
    local_stack, stack_model_uri, run_worker, tmp_path
):
    s3, bucket = local_stack.client("s3"), local_stack.names.bucket
    camera = "cam-09"
    first = f"{local_stack.names.frames_prefix}{camera}/20261122T120000000Z.jpg"
    second = f"{local_stack.names.frames_prefix}{camera}/20261122T120001000Z.jpg"
    s3.put_object(Bucket=bucket, Key=first, Body=solid_jpeg("bus"))
    run_worker(extra=MARK_EVERY_FRAME)  # one bus frame: not yet a state of its own (2 in a row)
    assert [i["state"] for i in state_items(local_stack, camera) if i["item"] == "state"] == [IDLE]

    # The second bus frame would make the change; its worker dies right after writing its result.
    s3.put_object(Bucket=bucket, Key=second, Body=solid_jpeg("bus"))
    exit_code = kill_after_result_write(
        local_stack,
        worker_environment(local_stack, stack_model_uri, tmp_path, extra=MARK_EVERY_FRAME),
        str(tmp_path / "killed-worker.log"),
    )
    assert exit_code == -signal.SIGKILL
    written = result_of(local_stack, second)
    assert written is not None and written["label"] == "bus"  # committed...
    (state,) = [i for i in state_items(local_stack, camera) if i["item"] == "state"]
    assert [f["t"] for f in state["window"]] == ["2026-11-22T12:00:00.000Z"]  # ...and nothing after it
    assert not [entry for entry in review_items(local_stack, camera) if second in entry]
    assert published(local_stack) == []

    stats = run_worker(extra=MARK_EVERY_FRAME)  # the redelivery (after the visibility timeout)

    assert stats.invocations >= 1
    assert result_of(local_stack, second) == written  # the result itself is not written again
    items = state_items(local_stack, camera)
    (state,) = [i for i in items if i["item"] == "state"]
    assert state["state"] == "bus" and state["since"] == "2026-11-22T12:00:00.000Z"
    assert [f["t"] for f in state["window"]] == ["2026-11-22T12:00:00.000Z", "2026-11-22T12:00:01.000Z"]
    assert not state.get("unwritten") and not state.get("unpublished")  # the outbox was flushed
    events = sorted((i for i in items if i["item"].startswith("event#")), key=lambda i: i["item"])
    assert [(e["previous_state"], e["state"], e["frame_count"]) for e in events] == [
        (IDLE, IDLE, 0),
        (IDLE, "bus", 2),
    ]
    assert [(d["camera_id"], d["previous_state"], d["state"]) for d in published(local_stack)] == [
        (camera, IDLE, "bus")
    ]
    entries = review_items(local_stack, camera)
    marked = {entry: item for entry, item in entries.items() if entry.startswith("frame#")}
    assert sorted(item["key"] for item in marked.values()) == [first, second]
    assert {item["review_reason"] for item in marked.values()} == {"near_threshold"}
    # one slot per frame: the redelivery did not spend a second one
    assert sum(item["marked"] for entry, item in entries.items() if entry.startswith("quota#")) == 2
    dlq = local_stack.client("sqs").get_queue_attributes(
        QueueUrl=local_stack.dead_letter_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert dlq["Attributes"]["ApproximateNumberOfMessages"] == "0"
