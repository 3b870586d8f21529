"""lambda_handler end to end over a moto server (HTTP on 127.0.0.1) with the tiny real model.

Events are the recorded ones in tests/events/, rewritten to point at the test's bucket and
the objects the test uploaded (moto does not emit S3's sequencer, so tests set it).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote_plus

import pytest
from botocore.awsrequest import AWSResponse
from PIL import Image

from functions import env, wiring
from functions.errors import ConfigurationError, ModelIntegrityError, TransientError
from functions.frames.events import UnsupportedEventError
from functions.frames.manifest import read_manifest
from functions.handler import handle, lambda_handler
from functions.observability import LocalLambdaContext
from functions.settings import Settings
from functions.stores.results import ResultsTable
from tests.fixtures.aws import aws_client

EVENTS = Path(__file__).resolve().parents[1] / "events"
CONTEXT = LocalLambdaContext()
RED, GREEN, BLUE, GREY = (255, 0, 0), (0, 255, 0), (0, 0, 255), (128, 128, 128)
SMALL_LIMIT = 200_000  # bytes; frames here are a few kB
# The deployment's pattern here: file names may carry the capture time.
TIME_PATTERN = re.compile(
    r"^(?P<camera>[^/]+)/(?:.*/)?"
    r"(?:(?P<captured>\d{8}T\d{9}Z|\d{4}-\d{2}-\d{2}T[\d:.-]+Z)|[^/]+)\.(?i:jpe?g|png)$"
)


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def jpeg(colour, size=(320, 240)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def png(colour, size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


class Frames:
    """Uploads frames and builds the S3 records an S3 -> SQS notification would carry."""

    def __init__(self, s3, bucket):
        self.s3, self.bucket = s3, bucket
        self.template = json.loads(load("sqs_s3_put_two_messages.json")["Records"][0]["body"])["Records"][0]

    def put(self, key: str, data: bytes, tags: str | None = None) -> dict:
        extra = {"Tagging": tags} if tags else {}
        response = self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, **extra)
        return self.record(
            key, size=len(data), etag=response["ETag"].strip('"'), version=response.get("VersionId")
        )

    def record(self, key, *, size, etag, sequencer="0A1B2C3D4E5F678901", version=None) -> dict:
        record = copy.deepcopy(self.template)
        record["s3"]["bucket"]["name"] = self.bucket
        record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{self.bucket}"
        obj = {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag, "sequencer": sequencer}
        if version:
            obj["versionId"] = version
        record["s3"]["object"] = obj
        return record


def sqs_event(*messages: tuple[str, list[dict]]) -> dict:
    """An SQS event: one message per (messageId, S3 records)."""
    template = load("sqs_s3_put_two_messages.json")["Records"][0]
    records = []
    for message_id, s3_records in messages:
        record = copy.deepcopy(template)
        record["messageId"] = message_id
        record["body"] = json.dumps({"Records": s3_records})
        records.append(record)
    return {"Records": records}


def failures(response: dict) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def item_of(aws, key, version) -> dict | None:
    return ResultsTable(aws.table, aws.dynamodb).get(f"{aws.bucket}/{key}", version)


def tags_of(aws, key, version_id=None) -> dict:
    extra = {"VersionId": version_id} if version_id else {}
    tag_set = aws.s3.get_object_tagging(Bucket=aws.bucket, Key=key, **extra)["TagSet"]
    return {tag["Key"]: tag["Value"] for tag in tag_set}


class SteppingClock:
    """Deterministic time for processed_at: each call one second later."""

    def __init__(self):
        self.calls = 0

    def __call__(self) -> datetime:
        self.calls += 1
        return datetime(2026, 11, 22, 8, 0, self.calls, tzinfo=UTC)


@pytest.fixture
def make_app(aws, tiny_model):
    def build(*, dynamodb=None, **overrides):
        settings = Settings(
            model_uri="unused: model injected",
            results_table=aws.table,
            max_bytes=SMALL_LIMIT,
            key_pattern=TIME_PATTERN,
        )
        settings = dataclasses.replace(settings, **overrides)
        app = wiring.build_app(
            settings, s3_client=aws.s3, dynamodb_client=dynamodb or aws.dynamodb, model=tiny_model
        )
        app.now = SteppingClock()
        return app

    return build


@pytest.fixture
def app(make_app):
    built = make_app()
    wiring.install_app(built)
    yield built
    wiring.install_app(None)


@pytest.fixture
def tagging_app(make_app):
    """A deployment that writes object tags (writeTags "true"; the default leaves them off)."""
    built = make_app(write_tags=True)
    wiring.install_app(built)
    yield built
    wiring.install_app(None)


@pytest.fixture
def frames(aws) -> Frames:
    return Frames(aws.s3, aws.bucket)


# --- ok ----------------------------------------------------------------------------------------


def test_frame_gets_a_result_item_and_merged_tags(aws, tagging_app, frames, tiny_model):
    key = "frames/cam-01/20261122T073900123Z.jpg"
    record = frames.put(key, jpeg(RED), tags="retention=30d&owner=gate")
    etag = record["s3"]["object"]["eTag"]

    response = lambda_handler(sqs_event(("m-1", [record])), CONTEXT)

    assert response == {"batchItemFailures": []}
    item = item_of(aws, key, etag)
    assert item["status"] == "ok"
    assert (item["label"], item["top_label"], item["camera_id"]) == ("bus", "bus", "cam-01")
    assert item["captured_at"] == "2026-11-22T07:39:00.123Z"  # from the key
    assert item["object_id"] == f"{aws.bucket}/{key}" and item["etag"] == etag
    assert item["sequencer"] == "000000000000000A1B2C3D4E5F678901"
    assert item["confidence"] == item["probabilities"]["bus"] > Decimal("0.9999")
    assert set(item["probabilities"]) == {"bus", "car", "empty"}
    assert all(isinstance(p, Decimal) for p in item["probabilities"].values())
    assert (item["model_sha256"], item["model_version"]) == (tiny_model.sha256, "tiny-1")
    assert item["latency_ms"] >= 0 and item["processed_at"] == "2026-11-22T08:00:01.000Z"
    assert "reason" not in item
    assert tags_of(aws, key) == {
        "retention": "30d",
        "owner": "gate",
        "camsort-label": "bus",
        "camsort-confidence": "0.9999",
        "camsort-model-version": "tiny-1",
    }


def test_the_default_deployment_writes_no_tags_and_keeps_the_owners(aws, app, frames):
    key = "frames/cam-01/20261122T073901000Z.jpg"
    record = frames.put(key, jpeg(RED), tags="owner=gate")
    assert lambda_handler(sqs_event(("m-1", [record])), CONTEXT) == {"batchItemFailures": []}
    assert item_of(aws, key, record["s3"]["object"]["eTag"])["label"] == "bus"
    assert tags_of(aws, key) == {"owner": "gate"}


def test_all_frames_of_an_invocation_are_classified(aws, app, frames):
    keys = {
        colour: f"frames/cam-02/{name}.jpg"
        for colour, name in [(RED, "r"), (GREEN, "g"), (BLUE, "b"), (GREY, "k")]
    }
    records = {colour: frames.put(key, jpeg(colour)) for colour, key in keys.items()}
    event = sqs_event(
        ("m-red", [records[RED], records[GREEN]]), ("m-blue", [records[BLUE]]), ("m-grey", [records[GREY]])
    )

    assert lambda_handler(event, CONTEXT) == {"batchItemFailures": []}

    labels = {
        colour: item_of(aws, keys[colour], records[colour]["s3"]["object"]["eTag"])["label"]
        for colour in keys
    }
    assert labels == {RED: "bus", GREEN: "car", BLUE: "empty", GREY: "unknown"}


def test_capture_time_falls_back_to_last_modified(aws, app, frames):
    key = "frames/cam-03/no-time-here.png"
    record = frames.put(key, png(GREEN))
    lambda_handler(sqs_event(("m-1", [record])), CONTEXT)
    head = aws.s3.head_object(Bucket=aws.bucket, Key=key)
    item = item_of(aws, key, record["s3"]["object"]["eTag"])
    expected = head["LastModified"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + "000Z"
    assert item["captured_at"] == expected and item["label"] == "car"


def test_encoded_keys_from_the_recorded_event(aws, app, frames):
    event = load("sqs_s3_put_encoded_keys.json")
    keys = ["frames/cam 06/red flower.jpg", "frames/cam-06/c++ plus.jpg", "frames/caméra-07/写真.jpg"]
    for message, key in zip(event["Records"], keys, strict=True):
        uploaded = frames.put(key, jpeg(BLUE))
        body = json.loads(message["body"])
        body["Records"][0]["s3"]["bucket"]["name"] = aws.bucket
        body["Records"][0]["s3"]["object"].update(
            size=uploaded["s3"]["object"]["size"], eTag=uploaded["s3"]["object"]["eTag"]
        )
        message["body"] = json.dumps(body)

    assert lambda_handler(event, CONTEXT) == {"batchItemFailures": []}
    cameras = [
        item_of(aws, key, aws.s3.head_object(Bucket=aws.bucket, Key=key)["ETag"].strip('"'))["camera_id"]
        for key in keys
    ]
    assert cameras == ["cam 06", "cam-06", "caméra-07"]


def test_sns_wrapped_message(aws, app, frames):
    event = load("sqs_sns_s3_put.json")
    key = "frames/cam-03/frame-0001.jpg"
    uploaded = frames.put(key, jpeg(RED))
    sns = json.loads(event["Records"][0]["body"])
    sns["Message"] = json.dumps({"Records": [uploaded]})
    event["Records"][0]["body"] = json.dumps(sns)
    assert lambda_handler(event, CONTEXT) == {"batchItemFailures": []}
    assert item_of(aws, key, uploaded["s3"]["object"]["eTag"])["label"] == "bus"


# --- rejected: written, acknowledged, not retried ----------------------------------------------------


def test_bad_frames_are_rejected_and_acknowledged(aws, tagging_app, frames):
    good = jpeg(RED)
    cases = {
        "frames/cam-09/truncated.jpg": (good[: len(good) // 2], "truncated_or_corrupt"),
        "frames/cam-09/empty.jpg": (b"", "empty"),
        "frames/cam-09/notes.jpg": (b"these are not pixels" * 10, "not_jpeg_or_png"),
        "elsewhere/cam-09/x.jpg": (good, "unexpected_key"),
    }
    records = {key: frames.put(key, data) for key, (data, _) in cases.items()}
    event = sqs_event(*[(f"m-{i}", [record]) for i, record in enumerate(records.values())])

    assert lambda_handler(event, CONTEXT) == {"batchItemFailures": []}

    for key, (_, reason) in cases.items():
        item = item_of(aws, key, records[key]["s3"]["object"]["eTag"])
        assert (item["status"], item["reason"]) == ("rejected", reason), key
        assert key in item["detail"]
        assert "label" not in item
        assert not any(name.startswith("camsort-") for name in tags_of(aws, key))
    assert "camera_id" not in item_of(
        aws, "elsewhere/cam-09/x.jpg", records["elsewhere/cam-09/x.jpg"]["s3"]["object"]["eTag"]
    )


def test_oversized_frame_is_rejected_from_the_event_size_without_any_download(aws, app, frames):
    # The object does not even exist: a GetObject would fail, so the rejection must come
    # from the event's size alone.
    key = "frames/cam-09/huge.jpg"
    record = frames.record(key, size=SMALL_LIMIT + 1, etag="d41d8cd98f00b204e9800998ecf8427e")

    assert lambda_handler(sqs_event(("m-1", [record])), CONTEXT) == {"batchItemFailures": []}

    item = item_of(aws, key, "d41d8cd98f00b204e9800998ecf8427e")
    assert (item["status"], item["reason"], item["size"]) == ("rejected", "too_many_bytes", SMALL_LIMIT + 1)
    assert item["camera_id"] == "cam-09" and item["captured_at"] == "2026-11-22T07:39:00.456Z"  # event time


def test_overwritten_object_is_rejected_as_superseded(aws, app, frames):
    key = "frames/cam-09/overwritten.jpg"
    old = frames.put(key, jpeg(RED))
    frames.put(key, jpeg(GREEN))  # new content: its own event would follow

    assert lambda_handler(sqs_event(("m-old", [old])), CONTEXT) == {"batchItemFailures": []}

    item = item_of(aws, key, old["s3"]["object"]["eTag"])
    assert (item["status"], item["reason"]) == ("rejected", "superseded")


# --- duplicates and ordering -------------------------------------------------------------------------


def test_duplicate_delivery_writes_once(aws, app, frames):
    key = "frames/cam-04/dup.jpg"
    record = frames.put(key, jpeg(BLUE))
    event = sqs_event(("m-1", [record]))

    assert lambda_handler(event, CONTEXT) == {"batchItemFailures": []}
    first = item_of(aws, key, record["s3"]["object"]["eTag"])
    assert lambda_handler(event, CONTEXT) == {"batchItemFailures": []}
    # The same message delivered twice within one batch, too.
    assert lambda_handler(sqs_event(("m-1", [record]), ("m-1b", [record])), CONTEXT) == {
        "batchItemFailures": []
    }

    assert item_of(aws, key, record["s3"]["object"]["eTag"]) == first  # processed_at unchanged


def test_older_event_changes_nothing_and_newer_replaces(aws, app, frames):
    key = "frames/cam-04/seq.jpg"
    newer = frames.put(key, jpeg(RED))
    newer["s3"]["object"]["sequencer"] = "0061D4A2B7C3E5F200"
    older = copy.deepcopy(newer)
    older["s3"]["object"]["sequencer"] = "61D4A2B7C3E5F1FF"  # shorter hex, smaller value
    newest = copy.deepcopy(newer)
    newest["s3"]["object"]["sequencer"] = "0061D4A2B7C3E5F201"
    etag = newer["s3"]["object"]["eTag"]

    lambda_handler(sqs_event(("m-newer", [newer])), CONTEXT)
    written = item_of(aws, key, etag)
    lambda_handler(sqs_event(("m-older", [older])), CONTEXT)
    assert item_of(aws, key, etag) == written

    lambda_handler(sqs_event(("m-newest", [newest])), CONTEXT)
    replaced = item_of(aws, key, etag)
    assert replaced["sequencer"] == "000000000000000061D4A2B7C3E5F201"
    assert replaced["processed_at"] > written["processed_at"]


def test_conditional_write_itself_refuses_equal_and_older_sequencers(aws):
    # The BatchGetItem look-up usually skips these earlier; the write is the guarantee.
    table = ResultsTable(aws.table, aws.dynamodb)
    base = {"object_id": "b/k.jpg", "object_version": "e1", "status": "ok", "confidence": 0.5}
    assert table.put_result({**base, "sequencer": "0002"}) is True
    assert table.put_result({**base, "sequencer": "0002", "confidence": 0.9}) is False
    assert table.put_result({**base, "sequencer": "0001", "confidence": 0.9}) is False
    assert table.get("b/k.jpg", "e1")["confidence"] == Decimal("0.5")
    assert table.put_result({**base, "sequencer": "0003", "confidence": 0.75}) is True
    assert table.get("b/k.jpg", "e1")["confidence"] == Decimal("0.75")
    # No sequencer (moto, Batch Operations): the first write wins.
    assert table.put_result({**base, "object_version": "e2", "sequencer": ""}) is True
    assert table.put_result({**base, "object_version": "e2", "sequencer": ""}) is False


def test_new_content_under_the_same_key_is_a_new_item(aws, app, frames):
    key = "frames/cam-05/same-key.jpg"
    first = frames.put(key, jpeg(RED))
    lambda_handler(sqs_event(("m-1", [first])), CONTEXT)
    second = frames.put(key, jpeg(GREEN))
    lambda_handler(sqs_event(("m-2", [second])), CONTEXT)

    assert item_of(aws, key, first["s3"]["object"]["eTag"])["label"] == "bus"
    assert item_of(aws, key, second["s3"]["object"]["eTag"])["label"] == "car"
    # Both in the camera's index; same LastModified second, so their GSI order is not defined.
    assert sorted(i["label"] for i in ResultsTable(aws.table, aws.dynamodb).query_camera("cam-05")) == [
        "bus",
        "car",
    ]


def test_versioned_bucket_uses_version_ids_and_tags_the_exact_version(
    aws, make_app, s3_client, versioned_frames_bucket
):
    wiring.install_app(make_app(write_tags=True))
    try:
        versioned = Frames(s3_client, versioned_frames_bucket)
        key = "frames/cam-05/v.jpg"
        first = versioned.put(key, jpeg(RED))
        second = versioned.put(key, jpeg(BLUE))
        v1, v2 = first["s3"]["object"]["versionId"], second["s3"]["object"]["versionId"]
        # Both versions still exist, so the older event is classified, not superseded.
        assert lambda_handler(sqs_event(("m-1", [first]), ("m-2", [second])), CONTEXT) == {
            "batchItemFailures": []
        }
    finally:
        wiring.install_app(None)
    table = ResultsTable(aws.table, aws.dynamodb)
    assert table.get(f"{versioned_frames_bucket}/{key}", v1)["label"] == "bus"
    assert table.get(f"{versioned_frames_bucket}/{key}", v2)["label"] == "empty"
    tags = {
        v: s3_client.get_object_tagging(Bucket=versioned_frames_bucket, Key=key, VersionId=v)["TagSet"]
        for v in (v1, v2)
    }
    assert {t["Key"]: t["Value"] for t in tags[v1]}["camsort-label"] == "bus"
    assert {t["Key"]: t["Value"] for t in tags[v2]}["camsort-label"] == "empty"


# --- failures: only the failed message is retried ---------------------------------------------------


class _Body:
    def __init__(self, data: bytes):
        self._data = data

    def stream(self, **_):
        yield self._data


def throttle_put_item_for(key: str):
    """A botocore ``before-send`` hook: DynamoDB answers HTTP 400 ProvisionedThroughputExceeded
    to PutItem requests for ``key``, exactly as the service does when throttling. botocore
    parses the response and raises its real ClientError."""

    def before_send(request, **_):
        body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
        if request.headers.get("X-Amz-Target", b"").endswith(b"PutItem") and json.dumps(key)[1:-1] in body:
            payload = json.dumps(
                {
                    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                    "message": "The level of configured provisioned throughput for the table was exceeded.",
                }
            ).encode()
            headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "THROTTLED"}
            return AWSResponse(request.url, 400, headers, _Body(payload))
        return None

    return before_send


def test_transient_failure_reports_exactly_that_message(aws, make_app, frames):
    throttled_key = "frames/cam-07/throttled.jpg"
    dynamodb = aws_client("dynamodb", aws.endpoint_url)
    dynamodb.meta.events.register("before-send.dynamodb.PutItem", throttle_put_item_for(throttled_key))
    ok = frames.put("frames/cam-07/fine.jpg", jpeg(RED))
    throttled = frames.put(throttled_key, jpeg(GREEN))
    event = sqs_event(("m-ok", [ok]), ("m-throttled", [throttled]))

    wiring.install_app(make_app(dynamodb=dynamodb))
    try:
        assert failures(lambda_handler(event, CONTEXT)) == ["m-throttled"]
    finally:
        wiring.install_app(None)
    assert item_of(aws, throttled_key, throttled["s3"]["object"]["eTag"]) is None
    assert item_of(aws, "frames/cam-07/fine.jpg", ok["s3"]["object"]["eTag"])["label"] == "bus"

    # SQS redelivers the failed message; the throttling is over.
    wiring.install_app(make_app())
    try:
        assert lambda_handler(sqs_event(("m-throttled", [throttled])), CONTEXT) == {"batchItemFailures": []}
    finally:
        wiring.install_app(None)
    assert item_of(aws, throttled_key, throttled["s3"]["object"]["eTag"])["label"] == "car"


def test_unreachable_dynamodb_fails_every_message_as_transient(aws, make_app, frames):
    from infra.local.moto_server import free_port

    closed = aws_client("dynamodb", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    record = frames.put("frames/cam-07/a.jpg", jpeg(RED))
    app = make_app(dynamodb=closed)
    response = handle(sqs_event(("m-1", [record]), ("m-2", [record])), lambda: app)
    assert failures(response) == ["m-1", "m-2"]


def test_unparseable_message_is_reported_and_the_rest_processed(aws, app, frames):
    record = frames.put("frames/cam-07/b.jpg", jpeg(BLUE))
    event = sqs_event(("m-good", [record]), ("m-bad", []))
    event["Records"][1]["body"] = "{ this is not json"
    assert failures(lambda_handler(event, CONTEXT)) == ["m-bad"]
    assert item_of(aws, "frames/cam-07/b.jpg", record["s3"]["object"]["eTag"])["label"] == "empty"


def test_missing_table_is_an_error_not_a_rejection(aws, make_app, frames):
    record = frames.put("frames/cam-07/c.jpg", jpeg(BLUE))
    app = make_app(results_table="no-such-table")
    assert failures(handle(sqs_event(("m-1", [record])), lambda: app)) == ["m-1"]


# --- other event sources -------------------------------------------------------------------------------


def test_batch_operations_result_codes(aws, app, frames, s3_client, versioned_frames_bucket):
    # Schema 2.0, a versioned object: Succeeded.
    versioned = Frames(s3_client, versioned_frames_bucket)
    good_key = "frames/cam-05/20261122T074000000Z.png"
    version = versioned.put(good_key, png(GREEN))["s3"]["object"]["versionId"]
    event = load("batch_operations_v2.json")
    event["tasks"][0].update(s3Bucket=versioned_frames_bucket, s3VersionId=version)
    response = lambda_handler(event, CONTEXT)
    assert response == {
        "invocationSchemaVersion": "2.0",
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": event["invocationId"],
        "results": [
            {
                "taskId": "bG9uZ3Rhc2tpZGdvZXNoZXJlCg",
                "resultCode": "Succeeded",
                "resultString": "ok: car (0.9999)",
            }
        ],
    }
    item = ResultsTable(aws.table, aws.dynamodb).get(f"{versioned_frames_bucket}/{good_key}", version)
    assert (item["label"], item["captured_at"], item["sequencer"]) == ("car", "2026-11-22T07:40:00.000Z", "")

    # Schema 1.0, key URL-encoded, not an image: PermanentFailure, result still recorded.
    bad_key = "frames/cam-05/night shift/frame+1.jpg"
    etag = frames.put(bad_key, b"GIF89a not a frame")["s3"]["object"]["eTag"]
    event = load("batch_operations_v1.json")
    event["tasks"][0]["s3BucketArn"] = f"arn:aws:s3:::{aws.bucket}"
    (result,) = lambda_handler(event, CONTEXT)["results"]
    assert (result["taskId"], result["resultCode"]) == ("dGFza2lkZ29lc2hlcmUK", "PermanentFailure")
    assert result["resultString"].startswith("rejected (not_jpeg_or_png)")
    assert item_of(aws, bad_key, etag)["reason"] == "not_jpeg_or_png"

    # An object that no longer exists: PermanentFailure, nothing to key an item on.
    event["tasks"][0]["s3Key"] = "frames/cam-05/gone.jpg"
    (result,) = lambda_handler(event, CONTEXT)["results"]
    assert result["resultCode"] == "PermanentFailure" and "superseded" in result["resultString"]


def test_batch_operations_transient_is_temporary_failure(aws, make_app, frames):
    key = "frames/cam-05/t.jpg"
    frames.put(key, jpeg(RED))
    dynamodb = aws_client("dynamodb", aws.endpoint_url)
    dynamodb.meta.events.register("before-send.dynamodb.PutItem", throttle_put_item_for(key))
    event = load("batch_operations_v2.json")
    event["tasks"][0].update(s3Bucket=aws.bucket, s3Key=key, s3VersionId=None)
    app = make_app(dynamodb=dynamodb)
    (result,) = handle(event, lambda: app)["results"]
    assert result["resultCode"] == "TemporaryFailure"


def test_eventbridge_object_created(aws, app, frames):
    key = "frames/cam-04/2026-11-22T07-39-00.789Z.jpg"
    uploaded = frames.put(key, jpeg(RED))["s3"]["object"]
    event = load("eventbridge_object_created.json")
    event["detail"]["bucket"]["name"] = aws.bucket
    event["detail"]["object"].update(size=uploaded["size"], etag=uploaded["eTag"])
    del event["detail"]["object"]["version-id"]

    assert lambda_handler(event, CONTEXT) == {"frames": 1, "ignored": 0, "ok": 1}
    item = item_of(aws, key, uploaded["eTag"])
    assert (item["label"], item["captured_at"]) == ("bus", "2026-11-22T07:39:00.789Z")


def test_direct_s3_event_failure_is_raised_for_lambda_to_retry(aws, make_app, frames):
    key = "frames/cam-04/direct.jpg"
    uploaded = frames.put(key, jpeg(RED))
    dynamodb = aws_client("dynamodb", aws.endpoint_url)
    dynamodb.meta.events.register("before-send.dynamodb.PutItem", throttle_put_item_for(key))
    app = make_app(dynamodb=dynamodb)
    with pytest.raises(TransientError, match="PutItem"):
        handle({"Records": [uploaded]}, lambda: app)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("s3_test_event.json", {"frames": 0, "ignored": 1}),  # direct invocation: a summary
        ("sqs_s3_test_event.json", {"batchItemFailures": []}),  # SQS: nothing failed
    ],
)
def test_test_event_is_acknowledged_without_loading_anything(name, expected, monkeypatch):
    # No app installed and no configuration: building one would raise ConfigurationError.
    wiring.install_app(None)
    monkeypatch.delenv(env.MODEL_URI, raising=False)
    response = lambda_handler(load(name), CONTEXT)
    assert response == expected


@pytest.mark.parametrize("records", [["text"], [{"eventSource": "aws:sqs"}, 7]])
def test_records_that_are_not_objects_take_the_malformed_event_path(records, capsys, caplog):
    # Not an AttributeError escaping: the malformed-event log line and the InvocationErrors metric.
    with pytest.raises(UnsupportedEventError, match="Records"):
        lambda_handler({"Records": records}, CONTEXT)
    assert "unsupported or malformed event" in caplog.text
    assert '"InvocationErrors":[1.0]' in capsys.readouterr().out


def test_malformed_sequencer_is_classified_without_ordering_and_logged(aws, app, frames, caplog):
    key = "frames/cam-04/badseq.jpg"
    record = frames.put(key, jpeg(GREEN))
    record["s3"]["object"]["sequencer"] = "not-hex!"
    assert lambda_handler(sqs_event(("m-badseq", [record])), CONTEXT) == {"batchItemFailures": []}
    item = item_of(aws, key, record["s3"]["object"]["eTag"])
    assert item["status"] == "ok" and item["sequencer"] == ""
    assert f"s3://{aws.bucket}/{key}: sequencer 'not-hex!'" in caplog.text
    assert "processed without ordering" in caplog.text


def test_unrecognised_event_is_raised(app):
    with pytest.raises(UnsupportedEventError, match="unrecognised event"):
        lambda_handler({"detail-type": "Scheduled Event", "source": "aws.events"}, CONTEXT)


# --- configuration from the environment -----------------------------------------------------------


def test_default_app_from_environment(aws, aws_env, frames, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(env.MODEL_URI, str(tiny_model_dir))
    monkeypatch.setenv(env.MODEL_SHA256, read_manifest(tiny_model_dir).model_sha256)
    monkeypatch.setenv(env.RESULTS_TABLE, aws.table)
    monkeypatch.setenv(env.ONNX_THREADS, "1")
    wiring.install_app(None)
    record = frames.put("frames/cam-08/env.jpg", jpeg(GREEN))
    try:
        assert lambda_handler(sqs_event(("m-1", [record])), CONTEXT) == {"batchItemFailures": []}
        assert wiring.default_app() is wiring.default_app()  # once per container
        assert wiring.default_app().model.threads == 1  # CAMSORT_ONNX_THREADS, through Settings
    finally:
        wiring.install_app(None)
    assert item_of(aws, "frames/cam-08/env.jpg", record["s3"]["object"]["eTag"])["label"] == "car"


def test_missing_configuration_is_a_clear_error(aws, aws_env, frames, monkeypatch):
    monkeypatch.delenv(env.MODEL_URI, raising=False)
    monkeypatch.setenv(env.RESULTS_TABLE, aws.table)
    wiring.install_app(None)
    record = frames.put("frames/cam-08/x.jpg", jpeg(GREEN))
    with pytest.raises(ConfigurationError, match=env.MODEL_URI):
        lambda_handler(sqs_event(("m-1", [record])), CONTEXT)
    wiring.install_app(None)


@pytest.mark.parametrize("pin", ["", "   "])
def test_an_empty_pin_stops_the_cold_start_instead_of_turning_pinning_off(
    aws, aws_env, frames, tiny_model_dir, monkeypatch, pin
):
    monkeypatch.setenv(env.MODEL_URI, str(tiny_model_dir))  # a good model: only the pin is missing
    monkeypatch.setenv(env.RESULTS_TABLE, aws.table)
    monkeypatch.setenv(env.MODEL_SHA256, pin)
    wiring.install_app(None)
    record = frames.put("frames/cam-08/unpinned.jpg", jpeg(GREEN))
    try:
        with pytest.raises(ConfigurationError, match=f"{env.MODEL_SHA256} is empty or not set"):
            lambda_handler(sqs_event(("m-1", [record])), CONTEXT)
    finally:
        wiring.install_app(None)
    assert item_of(aws, "frames/cam-08/unpinned.jpg", record["s3"]["object"]["eTag"]) is None


def test_sha256_mismatch_refused_when_the_function_loads_its_model(
    aws, aws_env, frames, tampered_model_dir, monkeypatch
):
    monkeypatch.setenv(env.MODEL_URI, str(tampered_model_dir))
    monkeypatch.setenv(env.MODEL_SHA256, "0" * 64)  # any pin: the bytes fail their own manifest first
    monkeypatch.setenv(env.RESULTS_TABLE, aws.table)
    wiring.install_app(None)
    record = frames.put("frames/cam-08/y.jpg", jpeg(GREEN))
    try:
        with pytest.raises(ModelIntegrityError, match="does not match"):
            lambda_handler(sqs_event(("m-1", [record])), CONTEXT)
    finally:
        wiring.install_app(None)
    assert item_of(aws, "frames/cam-08/y.jpg", record["s3"]["object"]["eTag"]) is None


def test_query_camera_by_time_range_and_pages(aws):
    table = ResultsTable(aws.table, aws.dynamodb)
    for minute in range(5):
        table.put_result(
            {
                "object_id": f"b/frames/cam-q/{minute}.jpg",
                "object_version": hashlib.md5(bytes([minute])).hexdigest(),
                "camera_id": "cam-q",
                "captured_at": f"2026-11-22T07:0{minute}:00.000Z",
                "sequencer": "",
                "status": "ok",
            }
        )
    everything = table.query_camera("cam-q")
    assert [i["captured_at"][14:16] for i in everything] == ["00", "01", "02", "03", "04"]
    window = table.query_camera(
        "cam-q", start=datetime(2026, 11, 22, 7, 1, tzinfo=UTC), end="2026-11-22T07:03:00.000Z"
    )
    assert [i["captured_at"][14:16] for i in window] == ["01", "02", "03"]
    assert [
        i["captured_at"][14:16]
        for i in table.query_camera("cam-q", start="2026-11-22T07:02:00.000Z", limit=2)
    ] == ["02", "03"]
    assert table.query_camera("cam-none") == []


# --- batching, limits, tags, observability --------------------------------------------------------------


class CountingModel:
    """The real tiny model, recording the batch size of every predict call."""

    def __init__(self, model):
        self._model, self.batches = model, []
        self.manifest, self.sha256, self.labels = model.manifest, model.sha256, model.labels
        self.decide = model.decide  # the decision rule (and familiarity) of the real model

    def predict(self, images):
        self.batches.append(len(images))
        return self._model.predict(images)


def test_one_inference_per_invocation(aws, make_app, frames, tiny_model):
    records = [
        frames.put(f"frames/cam-10/{i}.jpg", jpeg(colour))
        for i, colour in enumerate([RED, GREEN, BLUE, GREY])
    ]
    records.append(frames.put("frames/cam-10/bad.jpg", b"nope"))
    app = make_app()
    app.model = CountingModel(tiny_model)
    event = sqs_event(("m-1", records[:2]), ("m-2", records[2:4]), ("m-3", records[4:]))
    assert handle(event, lambda: app) == {"batchItemFailures": []}
    assert app.model.batches == [4]  # the rejected frame never reaches the model


def test_pixel_limit(aws, make_app, frames):
    record = frames.put("frames/cam-11/wide.jpg", jpeg(RED, size=(400, 300)))
    app = make_app(max_pixels=100_000)
    assert handle(sqs_event(("m-1", [record])), lambda: app) == {"batchItemFailures": []}
    item = item_of(aws, "frames/cam-11/wide.jpg", record["s3"]["object"]["eTag"])
    assert (item["status"], item["reason"]) == ("rejected", "too_many_pixels")


def test_batch_operations_oversized_object_is_rejected_from_its_head(aws, app, frames):
    key = "frames/cam-11/big.jpg"
    etag = frames.put(key, b"\xff\xd8\xff" + bytes(SMALL_LIMIT))["s3"]["object"]["eTag"]
    event = load("batch_operations_v2.json")
    event["tasks"][0].update(s3Bucket=aws.bucket, s3Key=key, s3VersionId=None)
    (result,) = lambda_handler(event, CONTEXT)["results"]
    assert result["resultCode"] == "PermanentFailure"
    assert item_of(aws, key, etag)["reason"] == "too_many_bytes"


def test_tags_are_replaced_not_duplicated_and_skipped_when_full(aws, tagging_app, frames):
    key = "frames/cam-12/tags.jpg"
    record = frames.put(key, jpeg(RED), tags="camsort-label=stale&keep=me")
    lambda_handler(sqs_event(("m-1", [record])), CONTEXT)
    assert tags_of(aws, key) == {
        "keep": "me",
        "camsort-label": "bus",
        "camsort-confidence": "0.9999",
        "camsort-model-version": "tiny-1",
    }

    full = "frames/cam-12/full.jpg"
    own = "&".join(f"t{i}=v{i}" for i in range(9))  # 9 + our 3 > S3's 10
    record = frames.put(full, jpeg(GREEN), tags=own)
    assert lambda_handler(sqs_event(("m-2", [record])), CONTEXT) == {"batchItemFailures": []}
    assert tags_of(aws, full) == {f"t{i}": f"v{i}" for i in range(9)}  # untouched
    assert item_of(aws, full, record["s3"]["object"]["eTag"])["label"] == "car"  # the table is the record


def test_logs_and_metrics(aws, app, frames, caplog, capsys):
    ok = frames.put("frames/cam-13/ok.jpg", jpeg(BLUE))
    bad = frames.put("frames/cam-13/bad.jpg", b"")
    lambda_handler(sqs_event(("m-1", [ok]), ("m-2", [bad])), CONTEXT)

    # Structured fields travel as record attributes (Powertools renders them as JSON keys).
    logs = {record.key: record for record in caplog.records if hasattr(record, "key")}
    assert (logs["frames/cam-13/ok.jpg"].status, logs["frames/cam-13/ok.jpg"].label) == ("ok", "empty")
    assert (logs["frames/cam-13/bad.jpg"].status, logs["frames/cam-13/bad.jpg"].reason) == (
        "rejected",
        "empty",
    )
    assert logs["frames/cam-13/ok.jpg"].bucket == aws.bucket

    # EMF blobs on stdout.
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    totals = next(m for m in lines if "Frames" in m)
    counts = {name: totals[name] for name in ("Frames", "Classified", "Rejected", "Failures")}
    assert counts == {"Frames": [2.0], "Classified": [1.0], "Rejected": [1.0], "Failures": [0.0]}
    assert any(m.get("reason") == "empty" and m.get("RejectedByReason") == [1.0] for m in lines)
    assert any(m.get("label") == "empty" and m.get("FramesByLabel") == [1.0] for m in lines)


def test_errors_are_logged_with_the_key(aws, make_app, frames, caplog):
    record = frames.put("frames/cam-13/err.jpg", jpeg(BLUE))
    app = make_app(results_table="no-such-table")
    handle(sqs_event(("m-1", [record])), lambda: app)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert [(e.key, e.status) for e in errors] == [("frames/cam-13/err.jpg", "error")]
    assert "no-such-table" in errors[0].getMessage()
    assert errors[0].exc_info is not None  # the traceback is logged
