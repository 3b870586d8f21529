"""Which AWS operation a request is, and requests per frame from a run's counts (no sockets)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from bench.requests import summarize
from infra.local.operations import RequestCounter, operation_name

SIGNED_SQS = "AWS4-HMAC-SHA256 Credential=AKIA/20261206/us-east-1/sqs/aws4_request, SignedHeaders=host"


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "expected"),
    [
        ("POST", "/", {"x-amz-target": "DynamoDB_20120810.PutItem"}, b"{}", "dynamodb:PutItem"),
        ("POST", "/", {"x-amz-target": "AmazonSQS.ReceiveMessage"}, b"{}", "sqs:ReceiveMessage"),
        ("POST", "/", {"x-amz-target": "AWSEvents.PutEvents"}, b"{}", "events:PutEvents"),
        ("GET", "/bucket/frames/cam-01/a.jpg", {}, b"", "s3:GetObject"),
        ("GET", "/bucket/frames/cam-01/a%20b.jpg?versionId=3", {}, b"", "s3:GetObject"),
        ("HEAD", "/bucket/models/v1/model.onnx", {}, b"", "s3:HeadObject"),
        ("PUT", "/bucket/frames/cam-01/a.jpg?tagging", {}, b"<Tagging/>", "s3:PutObjectTagging"),
        ("GET", "/bucket/frames/cam-01/a.jpg?tagging=", {}, b"", "s3:GetObjectTagging"),
        ("PUT", "/bucket/frames/cam-01/a.jpg", {}, b"jpeg", "s3:PutObject"),
        ("GET", "/bucket?list-type=2&prefix=frames/", {}, b"", "s3:ListObjectsV2"),
        ("GET", "/bucket?versions", {}, b"", "s3:ListObjectVersions"),
        ("PUT", "/bucket?notification", {}, b"", "s3:PUT bucket?notification"),  # unnamed: still counted
        (
            "POST",
            "/",
            {"content-type": "application/x-www-form-urlencoded; charset=utf-8", "authorization": SIGNED_SQS},
            b"Action=SendMessage&Version=2012-11-05",
            "sqs:SendMessage",
        ),
    ],
)
def test_operation_names(method, path, headers, body, expected):
    assert operation_name(method, path, headers, body) == expected


def test_counter_keeps_scopes_event_entries_and_written_items():
    counter = RequestCounter()
    item = {"object_id": {"S": "b/k"}, "label": {"S": "bus"}}

    def target(name: str, payload: dict) -> None:
        counter.record("POST", "/", {"x-amz-target": name}, json.dumps(payload).encode())

    target("DynamoDB_20120810.PutItem", {"TableName": "results-t", "Item": item})
    target("DynamoDB_20120810.UpdateItem", {"TableName": "review-t", "Key": {"k": {"S": "1"}}})
    target("AmazonSQS.DeleteMessageBatch", {"QueueUrl": "http://127.0.0.1:5000/123/frames-q", "Entries": []})
    target("AWSEvents.PutEvents", {"Entries": [{"EventBusName": "bus-t"}, {"EventBusName": "bus-t"}]})
    counter.record("GET", "/bucket/models/v1/model.onnx", {}, b"")
    counter.record("GET", "/bucket/frames/cam/a.jpg", {}, b"")
    seen = counter.snapshot()
    counter.record("GET", "/bucket/frames/cam/b.jpg", {}, b"")  # after the snapshot: not in it

    assert seen.requests == Counter(
        {
            ("dynamodb:PutItem", "results-t"): 1,
            ("dynamodb:UpdateItem", "review-t"): 1,
            ("sqs:DeleteMessageBatch", "frames-q"): 1,
            ("events:PutEvents", "bus-t"): 1,
            ("s3:GetObject", "models"): 1,
            ("s3:GetObject", "frames"): 1,
        }
    )
    assert seen.event_entries == Counter({"bus-t": 2})
    assert [(w.operation, w.table, w.item, w.key) for w in seen.dynamodb_writes] == [
        ("PutItem", "results-t", item, None),
        ("UpdateItem", "review-t", None, {"k": {"S": "1"}}),
    ]
    assert counter.requests[("s3:GetObject", "frames")] == 2


def test_summarize_splits_per_frame_per_invocation_and_per_container():
    tables = {
        "res": "results",
        "st": "state",
        "q": "queue",
        "b": "bus",
        "models": "models",
        "frames": "frames",
    }
    requests = Counter(
        {
            ("s3:GetObject", "frames"): 20,
            ("s3:GetObject", "models"): 13,  # the model's download at cold start
            ("s3:HeadObject", "models"): 1,
            ("sqs:GetQueueAttributes", "q"): 5,  # the local worker's drain check
            ("sqs:ReceiveMessage", "q"): 2,
            ("sqs:DeleteMessageBatch", "q"): 2,
            ("dynamodb:PutItem", "res"): 20,
            ("dynamodb:PutItem", "st"): 30,
            ("events:PutEvents", "b"): 2,
        }
    )
    item_bytes = [("res", "PutItem", 700, True)] * 20 + [("st", "PutItem", 1500, False)] * 30
    out = summarize(
        requests,
        Counter({"b": 3}),
        item_bytes,
        frames=20,
        invocations=2,
        notifications=20,
        log_bytes=16_000,
        outcomes={"ok:bus": 20},
        tables=tables,
    )
    assert out["per_frame"] == {
        "dynamodb:PutItem results": 1.0,
        "dynamodb:PutItem state": 1.5,
        "events:PutEvents bus": 0.1,
        "events:PutEvents entries bus": 0.15,
        "s3:GetObject frames": 1.0,
        "sqs:SendMessage (S3 notification)": 1.0,
    }
    assert out["per_invocation"] == {"sqs:DeleteMessageBatch queue": 1.0, "sqs:ReceiveMessage queue": 1.0}
    assert out["left_out"] == {
        "s3:GetObject models": 13,
        "s3:HeadObject models": 1,
        "sqs:GetQueueAttributes queue": 5,
    }
    assert out["dynamodb_items"] == {
        "dynamodb:PutItem results": {
            "writes_per_frame": 1.0,
            "mean_bytes": 700,
            "write_units_per_frame": 1.0,
        },
        "dynamodb:PutItem results by_camera index copy": {
            "writes_per_frame": 1.0,
            "mean_bytes": 700,
            "write_units_per_frame": 1.0,
        },
        "dynamodb:PutItem state": {"writes_per_frame": 1.5, "mean_bytes": 1500, "write_units_per_frame": 3.0},
    }
    assert (out["log_bytes_per_frame"], out["batch_size_measured"]) == (800, 10.0)
    with pytest.raises(ValueError, match="nothing to count"):
        summarize(
            Counter(),
            Counter(),
            [],
            frames=0,
            invocations=0,
            notifications=0,
            log_bytes=0,
            outcomes={},
            tables={},
        )
