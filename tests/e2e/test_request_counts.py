"""Requests per frame, counted through the whole local system (bench/requests.py) on a few frames."""

from __future__ import annotations

import pytest

from bench.perf.pricing import bill_lines
from bench.requests import measure_requests
from functions import env

pytestmark = pytest.mark.e2e

FRAMES = 8


@pytest.mark.parametrize("write_tags", [False, True])
def test_every_request_of_a_frame_is_counted(moto_server, tiny_model_dir, tmp_path, write_tags):
    measured = measure_requests(
        moto_server.endpoint_url,
        tiny_model_dir,
        tmp_path,
        cameras=2,
        frames_per_camera=FRAMES // 2,
        extra_environment={env.WRITE_TAGS: str(write_tags).lower()},
    )
    per_frame = measured["per_frame"]
    assert measured["frames"] == FRAMES and sum(measured["outcomes"].values()) == FRAMES
    assert all(outcome.startswith("ok:") for outcome in measured["outcomes"])
    # One download, one result item (and its index copy), one S3 notification per frame.
    assert per_frame["s3:GetObject frames"] == 1.0
    assert per_frame["dynamodb:PutItem results"] == 1.0
    assert per_frame["sqs:SendMessage (S3 notification)"] == 1.0
    assert (
        measured["dynamodb_items"]["dynamodb:PutItem results by_camera index copy"]["writes_per_frame"] == 1.0
    )
    # Camera state: one consistent read and one conditional write per camera per invocation, plus
    # a read and a write clearing the outbox after a change; every state item is one write unit.
    cameras, invocations = 2, measured["invocations"]
    changes = round(per_frame.get("events:PutEvents entries bus", 0.0) * FRAMES)
    state = measured["dynamodb_items"]["dynamodb:PutItem state"]
    assert 1 <= state["writes_per_frame"] * FRAMES <= cameras * invocations + changes
    assert state["write_units_per_frame"] == state["writes_per_frame"] and state["mean_bytes"] < 1024
    assert per_frame["dynamodb:GetItem state"] * FRAMES <= cameras * invocations + changes
    # Event items: written when an episode opens and when it closes, not for every batch.
    events = measured["dynamodb_items"].get("dynamodb:PutItem state event items", {"writes_per_frame": 0})
    assert events["writes_per_frame"] * FRAMES <= cameras + 2 * changes
    # The event source: one receive and one delete per batch; the model download is per container.
    assert set(measured["per_invocation"]) == {"sqs:ReceiveMessage queue", "sqs:DeleteMessageBatch queue"}
    assert measured["left_out"]["s3:GetObject models"] >= 2  # model.onnx + manifest.json
    # Tags: one write per frame, and a second (camsort-review) on each frame marked for review.
    reviewed = per_frame.get("dynamodb:PutItem review", 0.0)
    assert per_frame.get("s3:PutObjectTagging frames", 0.0) == ((1.0 + reviewed) if write_tags else 0.0)
    assert write_tags or not any("Tagging" in name for name in per_frame)
    assert measured["log_bytes_per_frame"] > 0
    # Every measured line has a price.
    assert {line.price for line in bill_lines(measured)} >= {
        "s3_get_request",
        "sqs_request",
        "dynamodb_write_unit",
    }
