"""The pure parts of the local SQS event source: event shape, response rules, environment."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from functions import env
from functions.observability import LocalLambdaContext
from infra.demo.accounting import emf_metric_total, notification_objects
from infra.deploy.topology import StackNames
from infra.local.function_env import environment_variables, function_environment
from infra.local.sqs_events import failed_message_ids, sqs_record
from infra.local.stack import LocalStack

EVENTS = Path(__file__).resolve().parents[1] / "events"

# A ReceiveMessage entry as botocore returns it (MessageSystemAttributeNames=["All"]).
MESSAGE = {
    "MessageId": "3b6f8a8e-6f43-4c4c-9f7e-1a2b3c4d5e6f",
    "ReceiptHandle": "AQEB-receipt",
    "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
    "Body": '{"Records": []}',
    "Attributes": {
        "SenderId": "AIDAIT2UOQQY3AUEKVGXU",
        "SentTimestamp": "1795333742380",
        "ApproximateReceiveCount": "2",
        "ApproximateFirstReceiveTimestamp": "1795333742458",
    },
    "MessageAttributes": {"origin": {"StringValue": "camera", "DataType": "String"}},
}

STACK = LocalStack(
    endpoint_url="http://127.0.0.1:5000",
    region="eu-west-1",
    names=StackNames.for_stage("unit"),
    queue_url="http://127.0.0.1:5000/123456789012/camsort-frames-unit",
    queue_arn="arn:aws:sqs:eu-west-1:123456789012:camsort-frames-unit",
    dead_letter_queue_url="http://127.0.0.1:5000/123456789012/camsort-frames-unit-dlq",
    dead_letter_queue_arn="arn:aws:sqs:eu-west-1:123456789012:camsort-frames-unit-dlq",
    function_timeout_s=5,
    visibility_timeout_s=30,
)


def test_sqs_record_has_lambdas_shape():
    record = sqs_record(MESSAGE, STACK.queue_arn, STACK.region)
    assert record == {
        "messageId": MESSAGE["MessageId"],
        "receiptHandle": "AQEB-receipt",
        "body": '{"Records": []}',
        "attributes": MESSAGE["Attributes"],
        "messageAttributes": {
            "origin": {
                "stringValue": "camera",
                "binaryValue": None,
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            }
        },
        "md5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "eventSource": "aws:sqs",
        "eventSourceARN": STACK.queue_arn,
        "awsRegion": "eu-west-1",
    }


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "a"}]}, {"a"}),
        ({"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "b"}]}, {"a", "b"}),
        # Lambda fails the whole batch for an identifier that is empty, missing or foreign.
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, None),
        ({"batchItemFailures": [{}]}, None),
        ({"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}, None),
        ({"batchItemFailures": "a"}, None),
        ("ok", None),
    ],
)
def test_failed_message_ids_follows_report_batch_item_failures(response, expected):
    assert failed_message_ids(response, ["a", "b", "c"]) == expected


def test_function_environment_with_given_role_credentials_and_pin():
    role = {"AWS_ACCESS_KEY_ID": "ASIAROLE", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "t"}
    environment = function_environment(
        STACK,
        "s3://camsort-frames-unit/models/v1/",
        endpoint_url="http://127.0.0.1:6000",
        credentials=role,
        model_sha256="a" * 64,
    )
    assert environment[env.MODEL_URI] == "s3://camsort-frames-unit/models/v1/"
    assert environment[env.RESULTS_TABLE] == "camsort-results-unit"
    assert environment[env.FRAMES_PREFIX] == "frames/"
    assert environment[env.AWS_ENDPOINT_URL] == "http://127.0.0.1:6000"
    assert environment["AWS_REGION"] == environment["AWS_DEFAULT_REGION"] == "eu-west-1"
    # The function runs as its role (infra/local/iam.py), never as the local admin.
    assert {name: environment[name] for name in role} == role
    assert environment[env.MODEL_SHA256] == "a" * 64


def test_environment_variables_are_restored(monkeypatch):
    monkeypatch.setenv("CAMSORT_TEST_KEPT", "before")
    monkeypatch.delenv("CAMSORT_TEST_ADDED", raising=False)
    with environment_variables({"CAMSORT_TEST_KEPT": "during", "CAMSORT_TEST_ADDED": "during"}):
        assert os.environ["CAMSORT_TEST_KEPT"] == os.environ["CAMSORT_TEST_ADDED"] == "during"
    assert os.environ["CAMSORT_TEST_KEPT"] == "before"
    assert "CAMSORT_TEST_ADDED" not in os.environ


def test_lambda_context_names_the_function_and_counts_down_from_the_timeout():
    context = LocalLambdaContext("camsort-classify", 2048, "eu-west-1", timeout_s=5)
    assert context.invoked_function_arn == "arn:aws:lambda:eu-west-1:123456789012:function:camsort-classify"
    assert context.memory_limit_in_mb == 2048
    assert 0 < context.get_remaining_time_in_millis() <= 5000


def _notification(*records: tuple[str, str, str | None]) -> dict:
    """An S3 notification (the recorded shape) with one record per (event name, raw key, eTag)."""
    recorded = json.loads((EVENTS / "s3_put.json").read_text())["Records"][0]
    body = {"Records": []}
    for event_name, key, etag in records:
        record = json.loads(json.dumps(recorded))
        record["eventName"] = event_name
        record["s3"]["object"]["key"] = key
        if etag is None:
            del record["s3"]["object"]["eTag"]
        else:
            record["s3"]["object"]["eTag"] = etag
        body["Records"].append(record)
    return body


def test_notification_objects_reads_decoded_keys_and_etags_only_from_object_created_records():
    body = _notification(
        ("ObjectCreated:Put", "frames%2Fcam-01%2Fa+b.jpg", "e1"),
        ("ObjectRemoved:Delete", "frames%2Fcam-01%2Fc.jpg", None),
    )
    assert notification_objects(json.dumps(body)) == [("frames/cam-01/a b.jpg", "e1")]
    # The same body wrapped by SNS (S3 -> SNS -> SQS) announces the same object.
    wrapped = {"Type": "Notification", "Message": json.dumps(body)}
    assert notification_objects(json.dumps(wrapped)) == [("frames/cam-01/a b.jpg", "e1")]
    assert notification_objects('{"Service": "Amazon S3", "Event": "s3:TestEvent"}') == []
    assert notification_objects("not json") == []
    assert notification_objects('{"Records": [{"eventSource": "aws:s3"}]}') == []  # malformed record


def test_emf_metric_total_sums_one_metric_from_the_offset_on(tmp_path):
    log = tmp_path / "function.log"
    earlier = '{"_aws": {"Timestamp": 1}, "Duplicates": [5.0]}\n'
    log.write_text(
        earlier
        + '{"level": "INFO", "message": "frames/cam-01/x.jpg: ok"}\n'
        + '{"_aws": {"Timestamp": 2}, "Duplicates": [1.0], "Frames": [3.0]}\n'
        + '{"_aws": {"Timestamp": 3}, "Duplicates": 2}\n'
    )
    assert emf_metric_total(log, "Duplicates", offset=len(earlier)) == 3.0
    assert emf_metric_total(log, "Duplicates") == 8.0
    assert emf_metric_total(log, "Frames") == 3.0
