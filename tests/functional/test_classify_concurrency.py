"""The overlapped I/O of functions.frames.classify keeps every guarantee (moto server, tiny real model).

* downloads of one invocation are in flight together, and so are the writes;
* per frame, the tags are in S3 before its result item is written;
* one frame whose tagging (or download) fails fails only itself: no result item for it,
  only its message is retried, the other frames are written;
* calls saved: no GetObjectTagging for an object GetObject says has no tags, no BatchGetItem
  on a first delivery; a redelivered message is looked up and skips its download.

Concurrency is shown with barriers (every call waits until all have started), never timers.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import threading

import pytest
from botocore.awsrequest import AWSResponse

from functions import wiring
from functions.concurrency import io_pool
from functions.handler import handle
from functions.settings import Settings
from functions.stores.results import ResultsTable
from functions.stores.storage import FrameStore
from tests.fixtures.aws import aws_client
from tests.functional.test_handler import (
    BLUE,
    GREEN,
    GREY,
    RED,
    SMALL_LIMIT,
    Frames,
    SteppingClock,
    _Body,
    failures,
    item_of,
    jpeg,
    sqs_event,
    tags_of,
)

COLOURS = [RED, GREEN, BLUE, GREY]


class CallLog:
    """Every AWS call a client makes, in order, as (operation, key): thread-safe."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def attach(self, client) -> None:
        client.meta.events.register("before-parameter-build", self._record)

    def _record(self, params, model, **_):
        key = params.get("Key") or params.get("Item", {}).get("object_id", {}).get("S", "")
        with self._lock:
            self.calls.append((model.name, key if isinstance(key, str) else ""))

    def operations(self, key: str | None = None) -> list[str]:
        with self._lock:
            return [op for op, k in self.calls if key is None or k == key or k.endswith("/" + key)]


@pytest.fixture
def clients(aws):
    log = CallLog()
    s3, dynamodb = aws_client("s3", aws.endpoint_url), aws_client("dynamodb", aws.endpoint_url)
    log.attach(s3)
    log.attach(dynamodb)
    return s3, dynamodb, log


@pytest.fixture
def build(aws, tiny_model, clients):
    s3, dynamodb, _ = clients

    def make(**overrides):
        settings = Settings(
            model_uri="unused: model injected", results_table=aws.table, max_bytes=SMALL_LIMIT
        )
        settings = dataclasses.replace(settings, **overrides)
        app = wiring.build_app(settings, s3_client=s3, dynamodb_client=dynamodb, model=tiny_model)
        app.now = SteppingClock()
        return app

    return make


def upload(aws, count: int, camera: str = "cam-c") -> tuple[list[str], list[dict]]:
    frames = Frames(aws.s3, aws.bucket)
    keys = [f"frames/{camera}/{i}.jpg" for i in range(count)]
    return keys, [frames.put(key, jpeg(COLOURS[i % len(COLOURS)])) for i, key in enumerate(keys)]


class BarrierStore(FrameStore):
    """Every download waits until all ``parties`` downloads have started."""

    def __init__(self, s3, parties: int):
        super().__init__(s3)
        self.download_barrier = threading.Barrier(parties, timeout=30)

    def get_frame(self, *args, **kwargs):
        self.download_barrier.wait()  # BrokenBarrierError (a failed frame) unless concurrent
        return super().get_frame(*args, **kwargs)


class CheckingTable(ResultsTable):
    """Every write waits for all writes to start, then checks its frame's tags are already in S3."""

    def __init__(self, table_name, dynamodb, s3, parties: int):
        super().__init__(table_name, dynamodb)
        self.write_barrier = threading.Barrier(parties, timeout=30)
        self._s3, self.tags_seen_at_write = s3, {}
        self._lock = threading.Lock()

    def put_result(self, item):
        self.write_barrier.wait()
        tag_set = self._s3.get_object_tagging(Bucket=item["bucket"], Key=item["key"])["TagSet"]
        with self._lock:
            self.tags_seen_at_write[item["key"]] = {t["Key"]: t["Value"] for t in tag_set}
        return super().put_result(item)


def test_downloads_and_writes_overlap_and_each_frame_is_tagged_before_its_write(aws, build, clients):
    keys, records = upload(aws, 4)
    app = build(write_tags=True)  # a deployment with tags on: each frame's tags precede its write
    app.store = BarrierStore(app.store._s3, parties=4)
    app.table = CheckingTable(aws.table, clients[1], aws.s3, parties=4)

    response = handle(sqs_event(*[(f"m-{i}", [r]) for i, r in enumerate(records)]), lambda: app)

    assert response == {"batchItemFailures": []}
    labels = {
        key: item_of(aws, key, r["s3"]["object"]["eTag"])["label"]
        for key, r in zip(keys, records, strict=True)
    }
    assert labels == dict(zip(keys, ["bus", "car", "empty", "unknown"], strict=True))
    for key in keys:
        assert app.table.tags_seen_at_write[key]["camsort-label"] == labels[key], key
    # And in the calls each frame made: its tagging strictly before its PutItem.
    log = clients[2]
    for key in keys:
        operations = log.operations(key)
        assert operations.index("PutObjectTagging") < operations.index("PutItem"), operations


# How each S3 operation looks on the wire (path-style, as against moto).
_S3_REQUESTS = {"PutObjectTagging": ("PUT", "tagging"), "GetObject": ("GET", "")}


def _s3_error_for(operation: str, key: str, status: int, code: str):
    """``before-send`` hook: S3 answers ``operation`` on ``key`` with a real-shaped error."""
    method, query = _S3_REQUESTS[operation]

    def before_send(request, **_):
        path, _, request_query = request.url.partition("?")
        if request.method != method or not path.endswith("/" + key) or request_query.split("=")[0] != query:
            return None
        body = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>x</Message></Error>"
        return AWSResponse(request.url, status, {"Content-Type": "application/xml"}, _Body(body.encode()))

    return before_send


@pytest.mark.parametrize(
    ("operation", "status", "code", "expected"),
    [
        ("PutObjectTagging", 503, "SlowDown", "transient"),
        ("PutObjectTagging", 403, "AccessDenied", "error"),
        ("GetObject", 500, "InternalError", "transient"),
    ],
)
def test_one_failed_frame_fails_only_itself(aws, build, clients, operation, status, code, expected):
    s3, _, log = clients
    keys, records = upload(aws, 4, camera=f"cam-f-{operation.lower()}-{status}")
    bad = keys[2]
    s3.meta.events.register("before-send.s3", _s3_error_for(operation, bad, status, code))
    app = build(write_tags=True)  # tags on: a failing tag write is one of the cases
    event = sqs_event(("m-0", records[:2]), ("m-bad", [records[2]]), ("m-3", [records[3]]))

    from functions.frames.classify import classify_frames
    from functions.frames.events import parse_event

    outcomes = classify_frames(parse_event(event).frames, app)
    assert [o.status for o in outcomes] == ["ok", "ok", expected, "ok"]
    # The handler's answer names that message only (the others are now duplicates: acknowledged).
    assert failures(handle(event, lambda: app)) == ["m-bad"]
    assert item_of(aws, bad, records[2]["s3"]["object"]["eTag"]) is None  # never written
    assert "PutItem" not in log.operations(bad)
    for key, record in zip(keys, records, strict=True):
        if key != bad:
            assert item_of(aws, key, record["s3"]["object"]["eTag"])["status"] == "ok"


def test_the_pool_is_the_containers_not_the_invocations(build):
    assert build().pool is build().pool is io_pool()


def test_no_tag_read_for_an_object_without_tags(aws, build, clients):
    _, _, log = clients
    frames = Frames(aws.s3, aws.bucket)
    plain = frames.put("frames/cam-t/plain.jpg", jpeg(RED))
    tagged = frames.put("frames/cam-t/tagged.jpg", jpeg(GREEN), tags="owner=gate")
    app = build(write_tags=True)
    assert handle(sqs_event(("m-1", [plain]), ("m-2", [tagged])), lambda: app) == {"batchItemFailures": []}

    assert log.operations("frames/cam-t/plain.jpg").count("GetObjectTagging") == 0
    assert log.operations("frames/cam-t/tagged.jpg").count("GetObjectTagging") == 1
    assert tags_of(aws, "frames/cam-t/plain.jpg")["camsort-label"] == "bus"
    assert tags_of(aws, "frames/cam-t/tagged.jpg") == {
        "owner": "gate",
        "camsort-label": "car",
        "camsort-confidence": "0.9999",
        "camsort-model-version": "tiny-1",
    }


def redelivered(event: dict, count: int = 2) -> dict:
    again = copy.deepcopy(event)
    for record in again["Records"]:
        record["attributes"]["ApproximateReceiveCount"] = str(count)
    return again


def test_duplicate_look_up_only_for_redeliveries(aws, build, clients):
    _, _, log = clients
    keys, records = upload(aws, 2, camera="cam-d")
    event = sqs_event(("m-1", [records[0]]), ("m-2", [records[1]]))
    app = build()

    assert handle(event, lambda: app) == {"batchItemFailures": []}
    assert "BatchGetItem" not in log.operations()  # first delivery: no look-up

    before = len(log.calls)
    assert handle(redelivered(event), lambda: app) == {"batchItemFailures": []}
    again = [op for op, _ in log.calls[before:]]
    assert again == ["BatchGetItem"]  # found both: no download, no inference, no write

    # A first delivery of an already-recorded frame (S3 sent the notification twice): the
    # conditional write still refuses it, the item is unchanged.
    item = item_of(aws, keys[0], records[0]["s3"]["object"]["eTag"])
    assert handle(sqs_event(("m-3", [records[0]])), lambda: app) == {"batchItemFailures": []}
    assert item_of(aws, keys[0], records[0]["s3"]["object"]["eTag"]) == item


def test_event_receive_count_reaches_the_frames():
    event = json.loads(json.dumps(sqs_event(("m-1", []))))
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "2"
    event["Records"][0]["body"] = json.dumps(
        {"Records": [Frames(None, "b").record("frames/cam/x.jpg", size=1, etag="e")]}
    )
    from functions.frames.classify import may_be_redelivered
    from functions.frames.events import parse_event

    (frame,) = parse_event(event).frames
    assert frame.receive_count == 2 and may_be_redelivered(frame)
    assert not may_be_redelivered(dataclasses.replace(frame, receive_count=1))
    assert may_be_redelivered(dataclasses.replace(frame, receive_count=None))
