"""The whole chain on moto over HTTP: S3 put -> notification -> SQS -> worker -> handler -> DynamoDB + tags.

Every test gets a fresh stack (unique names) on the session's moto server. Tests that need a
redelivery use a 1 s function timeout (visibility timeout 6 s); tests asserting that nothing was
redelivered use a lenient one, so a slow batch on a busy machine is not a Lambda timeout.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from functions import env, wiring
from functions.frames.events import normalise_sequencer
from functions.frames.keys import format_timestamp
from functions.stores.storage import TAG_PREFIX
from infra.demo.accounting import DeliveryTracker, account, notification_objects, scan_results
from infra.demo.simulator import BAD_KINDS, FRAME, s3_notification_body, simulate_cameras
from infra.deploy.topology import (
    CAMERA_INDEX,
    CAMERA_INDEX_PARTITION_KEY,
    CAMERA_INDEX_SORT_KEY,
    MAX_RECEIVE_COUNT,
    NOTIFICATION_EVENTS,
    TABLE_PARTITION_KEY,
    TABLE_SORT_KEY,
    notification_filter_rules,
)
from infra.local.faults import FaultInjectingProxy, dynamodb_throttling, s3_access_denied
from infra.local.function_env import function_environment
from infra.local.stack import local_client
from infra.ops.audit_report import audit_stack
from tests.fixtures.local_stack import LENIENT_TIMEOUT_S, TEST_MAX_BYTES
from tests.fixtures.tiny_model import TINY_LABELS

pytestmark = pytest.mark.e2e


def queue_counts(stack, queue_url: str) -> tuple[int, int]:
    attributes = stack.client("sqs").get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def take_all_messages(stack) -> list[dict]:
    """Receive and delete everything in the queue (no worker running)."""
    sqs = stack.client("sqs")
    taken = []
    while messages := sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for message in messages:
            sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"])
        taken.extend(messages)
    return taken


def test_stack_has_the_deployed_shape(local_stack):
    sqs = local_stack.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=local_stack.queue_url, AttributeNames=["All"])[
        "Attributes"
    ]
    assert attributes["VisibilityTimeout"] == str(6 * local_stack.function_timeout_s)
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": local_stack.dead_letter_queue_arn,
        "maxReceiveCount": MAX_RECEIVE_COUNT,
    }

    s3 = local_stack.client("s3")
    assert s3.get_bucket_versioning(Bucket=local_stack.names.bucket)["Status"] == "Enabled"
    rules = s3.get_bucket_notification_configuration(Bucket=local_stack.names.bucket)["QueueConfigurations"]
    # One rule, the prefix only: no suffix filter can drop a `.Jpeg` or an extension-less frame.
    (rule,) = rules
    assert rule["QueueArn"] == local_stack.queue_arn
    assert rule["Events"] == list(NOTIFICATION_EVENTS)
    assert rule["Filter"]["Key"]["FilterRules"] == notification_filter_rules("frames/")

    table = local_stack.client("dynamodb").describe_table(TableName=local_stack.names.table)["Table"]
    assert table["KeySchema"] == [
        {"AttributeName": TABLE_PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": TABLE_SORT_KEY, "KeyType": "RANGE"},
    ]
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == CAMERA_INDEX
    assert index["KeySchema"] == [
        {"AttributeName": CAMERA_INDEX_PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": CAMERA_INDEX_SORT_KEY, "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "ALL"}


def test_moto_notifies_every_key_under_the_prefix_whatever_its_name(local_stack):
    s3 = local_stack.client("s3")
    notified = ["frames/cam-01/a.jpg", "frames/cam-01/b.JPG", "frames/cam-01/c.jpeg", "frames/cam-01/d.png",
                "frames/cam-01/red flower+1.jpg", "frames/cam-01/e.txt", "frames/cam-01/f.Jpg",
                "frames/cam-01/no-extension"]  # fmt: skip
    silent = ["other/cam-01/g.jpg", "models/v1/model.onnx"]
    for key in notified + silent:
        s3.put_object(Bucket=local_stack.names.bucket, Key=key, Body=b"x")

    bodies = [message["Body"] for message in take_all_messages(local_stack)]
    # Like S3, configuring the notification sent one s3:TestEvent first.
    assert [json.loads(b).get("Event") for b in bodies].count("s3:TestEvent") == 1
    keys = [key for body in bodies for key, _etag in notification_objects(body)]
    assert sorted(keys) == sorted(notified)
    # Keys arrive URL-encoded (quote_plus); no sequencer, and no versionId although the bucket is versioned.
    encoded = [json.loads(b)["Records"][0]["s3"]["object"] for b in bodies if "Records" in json.loads(b)]
    assert {"key": "frames%2Fcam-01%2Fred+flower%2B1.jpg", "size": 1, "eTag": encoded[0]["eTag"]} in encoded
    assert all("sequencer" not in obj and "versionId" not in obj for obj in encoded)


@pytest.mark.parametrize("function_timeout_s", [LENIENT_TIMEOUT_S])
def test_every_upload_ends_with_exactly_one_result(local_stack, run_worker):
    manifest = simulate_cameras(
        local_stack,
        cameras=2,
        frames_per_camera=3,
        bad_objects=True,
        oversized_bytes=TEST_MAX_BYTES + 1,
        duplicate_notification=True,
        seed=7,
    )
    # A second duplicate, byte for byte: a real notification body taken from the queue, sent again.
    sqs = local_stack.client("sqs")
    received = sqs.receive_message(QueueUrl=local_stack.queue_url, MaxNumberOfMessages=10)["Messages"]
    real = next(m for m in received if "Records" in json.loads(m["Body"]))
    sqs.send_message(QueueUrl=local_stack.queue_url, MessageBody=real["Body"])
    for message in received:  # back to the queue for the worker
        sqs.change_message_visibility(
            QueueUrl=local_stack.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )

    tracker = DeliveryTracker()
    stats = run_worker(observer=tracker.observe, write_tags=True)  # the tags are checked below
    result = account(local_stack, manifest, tracker.snapshot())

    assert len(manifest.frames) == 6 and len(manifest.objects) == 10
    assert result.uploaded == result.results == 10
    assert result.lost == [] and result.dead_lettered == [] and result.extra_results == []
    assert result.unexpected == []
    assert result.rejected == Counter(BAD_KINDS.values())
    assert result.duplicate_notifications == 2
    # 10 uploads + the test event + 2 duplicates, all acknowledged on the first delivery.
    assert (stats.received, stats.deleted, stats.reported_failures, stats.failed_batches) == (13, 13, 0, 0)
    assert queue_counts(local_stack, local_stack.queue_url) == (0, 0)
    assert queue_counts(local_stack, local_stack.dead_letter_queue_url) == (0, 0)

    s3 = local_stack.client("s3")
    items = {item["key"]: item for item in scan_results(local_stack)}
    for uploaded in manifest.objects:
        item = items[uploaded.key]
        assert item["etag"] == uploaded.etag
        assert item["camera_id"] == uploaded.camera_id
        assert item["captured_at"] == format_timestamp(uploaded.captured_at)  # from the key, not LastModified
        tags = {
            t["Key"]: t["Value"]
            for t in s3.get_object_tagging(Bucket=local_stack.names.bucket, Key=uploaded.key)["TagSet"]
        }
        if uploaded.kind == FRAME:
            assert item["status"] == "ok"
            assert item["label"] in [*TINY_LABELS, "unknown"]
            assert set(item["probabilities"]) == set(TINY_LABELS)
            assert tags[f"{TAG_PREFIX}label"] == item["label"]
            assert float(tags[f"{TAG_PREFIX}confidence"]) == pytest.approx(
                float(item["confidence"]), abs=1e-4
            )
        else:
            assert (item["status"], item["reason"]) == ("rejected", uploaded.expected_reason)
            assert tags == {}


def test_throttled_result_writes_are_retried_by_botocore_then_by_sqs(local_stack, run_worker):
    # One more throttle than botocore's attempts (initial call + retries, as the function's
    # client config makes them): the first delivery fails, SQS redelivers it.
    probe = local_client("dynamodb", local_stack.endpoint_url, config=wiring.CLIENT_CONFIG)
    attempts = probe.meta.config.retries["total_max_attempts"]
    throttles = attempts + 1
    manifest = simulate_cameras(local_stack, cameras=1, frames_per_camera=1, seed=3)
    with FaultInjectingProxy(
        local_stack.endpoint_url, [dynamodb_throttling("PutItem", times=throttles)]
    ) as proxy:
        tracker = DeliveryTracker()
        stats = run_worker(endpoint_url=proxy.endpoint_url, observer=tracker.observe)
        injected = proxy.injected("dynamodb-throttling-PutItem")

    assert injected == throttles
    assert stats.reported_failures + stats.failed_batches >= 1  # the first delivery was not acknowledged
    result = account(local_stack, manifest, tracker.snapshot())
    assert (result.results, result.ok, result.lost, result.dead_lettered) == (1, 1, [], [])
    assert queue_counts(local_stack, local_stack.dead_letter_queue_url) == (0, 0)


def test_a_message_that_always_fails_ends_in_the_dlq_and_nothing_is_lost(local_stack, run_worker):
    manifest = simulate_cameras(local_stack, cameras=1, frames_per_camera=2, seed=4)
    forbidden, fine = manifest.objects[0].key, manifest.objects[1].key
    failed_deliveries: Counter[str] = Counter()

    def observe(records, failed_ids):
        tracker.observe(records, failed_ids)
        for record in records:
            if record["messageId"] in failed_ids:
                failed_deliveries.update(key for key, _ in notification_objects(record["body"]))

    tracker = DeliveryTracker()
    # AccessDenied on GetObject is not transient: the function reports the message failed every time.
    with FaultInjectingProxy(local_stack.endpoint_url, [s3_access_denied(forbidden, times=None)]) as proxy:
        run_worker(endpoint_url=proxy.endpoint_url, observer=observe)

    result = account(local_stack, manifest, tracker.snapshot())
    assert result.dead_lettered == [forbidden]
    assert result.lost == []
    assert result.results == result.ok == 1
    assert [item["key"] for item in scan_results(local_stack)] == [fine]
    # SQS's redrive (moto implements it): exactly maxReceiveCount deliveries, then the DLQ.
    assert failed_deliveries[forbidden] == MAX_RECEIVE_COUNT
    assert queue_counts(local_stack, local_stack.queue_url) == (0, 0)
    assert queue_counts(local_stack, local_stack.dead_letter_queue_url) == (1, 0)


@pytest.mark.parametrize("function_timeout_s", [LENIENT_TIMEOUT_S])
def test_an_older_event_after_a_newer_one_changes_nothing(local_stack, run_worker):
    manifest = simulate_cameras(local_stack, cameras=1, frames_per_camera=1, seed=5)
    uploaded = manifest.objects[0]
    run_worker()  # the real notification (moto: no sequencer)

    def send(sequencer: str) -> None:
        body = s3_notification_body(
            local_stack,
            uploaded.key,
            size=uploaded.size,
            etag=uploaded.etag,
            event_time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            sequencer=sequencer,
        )
        local_stack.client("sqs").send_message(QueueUrl=local_stack.queue_url, MessageBody=body)

    newer, older = "00650B4F6A1C2D3E4F", "00650B4F6A1C2D3E40"
    send(newer)
    run_worker()
    (after_newer,) = scan_results(local_stack)
    assert after_newer["sequencer"] == normalise_sequencer(newer)

    send(older)
    stats = run_worker()
    (after_older,) = scan_results(local_stack)
    assert after_older == after_newer
    assert (stats.received, stats.deleted) == (1, 1)  # acknowledged, not retried


@pytest.mark.parametrize("function_timeout_s", [LENIENT_TIMEOUT_S])
def test_a_new_upload_under_the_same_key_is_a_new_frame(local_stack, run_worker):
    from training.data.synthetic import frame_jpeg

    s3 = local_stack.client("s3")
    key = "frames/cam-07/20261122T073900123Z.jpg"
    first = s3.put_object(Bucket=local_stack.names.bucket, Key=key, Body=frame_jpeg("car", 1))["ETag"].strip(
        '"'
    )
    run_worker()
    second = s3.put_object(Bucket=local_stack.names.bucket, Key=key, Body=frame_jpeg("bus", 2))["ETag"].strip(
        '"'
    )
    run_worker()

    items = scan_results(local_stack)
    assert sorted(item["etag"] for item in items) == sorted([first, second])
    assert {item["status"] for item in items} == {"ok"}


def test_function_environment_points_the_function_at_the_stack_under_its_own_role(
    local_stack, stack_model_uri
):
    environment = function_environment(local_stack, stack_model_uri, endpoint_url="http://127.0.0.1:6000")
    assert environment[env.MODEL_URI] == stack_model_uri
    assert environment[env.RESULTS_TABLE] == local_stack.names.table
    assert environment[env.FRAMES_PREFIX] == local_stack.names.frames_prefix
    assert environment[env.AWS_ENDPOINT_URL] == "http://127.0.0.1:6000"
    assert environment["AWS_REGION"] == environment["AWS_DEFAULT_REGION"] == local_stack.region
    # The function runs as its own principal, never with the admin's keys.
    assert environment["AWS_ACCESS_KEY_ID"] not in ("testing", "")
    assert len(environment[env.MODEL_SHA256]) == 64  # pinned to the uploaded model


@pytest.mark.parametrize("function_timeout_s", [LENIENT_TIMEOUT_S])
def test_any_name_under_the_prefix_ends_with_exactly_one_result(local_stack, run_worker):
    """`aws s3 sync` picks the case (and cameras the extension): nothing may fall through."""
    import io

    from PIL import Image

    from training.data.synthetic import frame_jpeg

    png = io.BytesIO()
    Image.open(io.BytesIO(frame_jpeg("bus", 3))).save(png, format="PNG")
    uploads = {
        "frames/cam-01/a.Jpeg": frame_jpeg("car", 1),
        "frames/cam-01/b.JpG": frame_jpeg("bus", 2),
        "frames/cam-01/c.PNG": png.getvalue(),
        "frames/cam-01/d.jpeg": frame_jpeg("car", 4),
        "frames/cam-01/e-no-extension": frame_jpeg("bus", 5),  # a JPEG without a name for it
        "frames/cam-01/f-no-extension": b"not an image, no extension either",
        "frames/cam-01/g.txt": b"operator notes",
    }
    s3 = local_stack.client("s3")
    for key, body in uploads.items():
        s3.put_object(Bucket=local_stack.names.bucket, Key=key, Body=body)
    run_worker()

    items = scan_results(local_stack)
    assert sorted(item["key"] for item in items) == sorted(uploads)  # exactly one each
    outcome = {item["key"]: (item["status"], item.get("reason")) for item in items}
    assert outcome.pop("frames/cam-01/f-no-extension") == ("rejected", "not_jpeg_or_png")
    assert outcome.pop("frames/cam-01/g.txt") == ("rejected", "not_jpeg_or_png")
    assert set(outcome.values()) == {("ok", None)}
    assert queue_counts(local_stack, local_stack.dead_letter_queue_url) == (0, 0)
    report = audit_stack(local_stack)
    assert (report.counts["ok"], report.counts["rejected"], report.counts["unaccounted"]) == (5, 2, 0)
    assert report.clean
