"""Review marking in the function, on a moto server: index entry, merged tag, per-camera quota."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from functions import wiring
from functions.handler import lambda_handler
from functions.stores.review_queue import ReviewQueue
from infra.local.stack import create_review_table
from tests.fixtures.aws import aws_client, unique_name
from tests.functional import test_handler
from tests.functional.test_handler import CONTEXT, GREY, RED, Frames, jpeg, sqs_event, tags_of

make_app = test_handler.make_app  # the handler tests' app fixture, shared
NEAR = (148, 128, 128)  # tiny model: p(bus) ~ 0.52, just above the 0.5 threshold


@pytest.fixture
def review_table(aws) -> str:
    name = unique_name("camsort-review-test")
    create_review_table(aws.dynamodb, name)
    return name


def entries(aws, table: str) -> list[dict]:
    items = aws.dynamodb.scan(TableName=table)["Items"]
    return sorted((i for i in items if i["entry"]["S"].startswith("frame#")), key=lambda i: i["key"]["S"])


def quota(aws, table: str, camera: str) -> int:
    items = aws.dynamodb.scan(TableName=table)["Items"]
    counts = [int(i["marked"]["N"]) for i in items if i["camera_id"]["S"] == camera and "marked" in i]
    return sum(counts)


@pytest.fixture
def review_app(request, review_table):
    def install(**overrides):
        # A tagging deployment: the review mark's tag sits beside the live tags (tags are off by default).
        app = request.getfixturevalue("make_app")(
            **({"review_table": review_table, "write_tags": True} | overrides)
        )
        wiring.install_app(app)
        return app

    yield install
    wiring.install_app(None)


def test_unknown_and_near_threshold_frames_are_marked_confident_ones_not(aws, review_app, review_table):
    review_app(review_per_hour=10)
    frames = Frames(aws.s3, aws.bucket)
    records = {
        name: frames.put(f"frames/cam-01/{name}.jpg", jpeg(colour), tags="owner=gate")
        for name, colour in [("grey", GREY), ("near", NEAR), ("red", RED)]
    }

    assert lambda_handler(sqs_event(("m-1", list(records.values()))), CONTEXT) == {"batchItemFailures": []}

    queued = entries(aws, review_table)
    assert [(e["key"]["S"], e["review_reason"]["S"], e["label"]["S"]) for e in queued] == [
        ("frames/cam-01/grey.jpg", "unknown", "unknown"),
        ("frames/cam-01/near.jpg", "near_threshold", "bus"),
    ]
    assert queued[0]["top_label"]["S"] in {"bus", "car", "empty"}
    assert set(queued[1]["probabilities"]["M"]) == {"bus", "car", "empty"}
    # The review tag sits beside the live tags and the uploader's own.
    assert tags_of(aws, "frames/cam-01/near.jpg") == {
        "owner": "gate",
        "camsort-label": "bus",
        "camsort-confidence": tags_of(aws, "frames/cam-01/near.jpg")["camsort-confidence"],
        "camsort-model-version": "tiny-1",
        "camsort-review": "1",
    }
    assert "camsort-review" not in tags_of(aws, "frames/cam-01/red.jpg")
    assert quota(aws, review_table, "cam-01") == 2


def test_quota_per_camera_stops_a_flooding_camera_only(aws, review_app, review_table):
    review_app(review_per_hour=2)
    frames = Frames(aws.s3, aws.bucket)
    flood = [frames.put(f"frames/cam-bad/{n}.jpg", jpeg(GREY)) for n in range(5)]
    calm = [frames.put("frames/cam-ok/0.jpg", jpeg(GREY))]

    assert lambda_handler(sqs_event(("m-1", flood), ("m-2", calm)), CONTEXT) == {"batchItemFailures": []}

    by_camera = [e["camera_id"]["S"] for e in entries(aws, review_table)]
    assert sorted(by_camera) == ["cam-bad", "cam-bad", "cam-ok"]
    assert quota(aws, review_table, "cam-bad") == 2  # the refused marks did not count
    marked = sum("camsort-review" in tags_of(aws, r["s3"]["object"]["key"]) for r in flood)
    assert marked == 2


def test_review_failure_never_fails_the_live_result(aws, review_app):
    review_app(review_table="no-such-review-table")
    frames = Frames(aws.s3, aws.bucket)
    record = frames.put("frames/cam-01/grey.jpg", jpeg(GREY))

    assert lambda_handler(sqs_event(("m-1", [record])), CONTEXT) == {"batchItemFailures": []}
    tags = tags_of(aws, "frames/cam-01/grey.jpg")
    assert tags["camsort-label"] == "unknown" and "camsort-review" not in tags


def test_a_frame_is_queued_once(aws, review_table):
    queue = ReviewQueue(review_table, aws.dynamodb)
    item = {"camera_id": "c", "object_id": "b/k", "object_version": "v", "captured_at": "2026", "key": "k"}
    assert queue.add_entry(item) is True
    assert queue.add_entry(item) is False


def test_a_used_up_quota_is_asked_once_per_container_and_window(aws, review_table):
    # A refused conditional UpdateItem is billed like an accepted one: once told the hour is
    # used up, the container stops asking until the next hour (or until it gives a slot back).
    calls: list[str] = []
    client = aws_client("dynamodb", aws.endpoint_url)  # its own: the session's client stays uncounted
    client.meta.events.register(
        "provide-client-params.dynamodb.UpdateItem",
        lambda params, **_: calls.append(params["Key"]["entry"]["S"]),
    )
    queue = ReviewQueue(review_table, client)
    expires = datetime(2026, 12, 6, 13, tzinfo=UTC)
    taken = [queue.take_quota("cam-01", "2026-12-06T11", 2, expires) for _ in range(5)]
    assert taken == [True, True, False, False, False]
    assert calls == ["quota#2026-12-06T11"] * 3  # two taken, one refused, then no request
    assert quota(aws, review_table, "cam-01") == 2

    assert queue.take_quota("cam-02", "2026-12-06T11", 2, expires) is True  # another camera: its own quota
    assert queue.take_quota("cam-01", "2026-12-06T12", 2, expires) is True  # the next hour asks again

    assert queue.release_quota("cam-01", "2026-12-06T11") is True  # a slot given back here is used again
    assert queue.take_quota("cam-01", "2026-12-06T11", 2, expires) is True
