"""What follows a committed result, against a moto server: every swallowed failure is counted
(``ReviewFailures``, ``StateFailures``, ``OutboxDropped``, ``ShadowFailures``), a review quota
slot whose entry failed is given back, and a later delivery completes what a failure left.

Failures are DynamoDB's own answers (a 400 AccessDeniedException, as IAM gives it), returned by
a botocore ``before-send`` hook for the one request they target; everything else reaches moto.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable

import pytest
from botocore.awsrequest import AWSResponse

from functions import wiring
from functions.frames.shadow import ShadowScorer
from functions.handler import lambda_handler
from functions.observability import metrics
from functions.state.camera_state import CameraStates
from functions.state.outbox import MAX_OUTBOX
from functions.state.smoothing import Frame, Rule, SmoothingConfig
from infra.deploy.topology import StackNames
from infra.local.stack import create_state_resources
from tests.fixtures.aws import aws_client, unique_name
from tests.functional import test_handler, test_review_marking
from tests.functional.test_handler import CONTEXT, GREY, RED, _Body, item_of, jpeg, sqs_event
from tests.functional.test_review_marking import entries, quota

make_app = test_handler.make_app  # the handler tests' fixtures, shared
frames = test_handler.frames
review_table = test_review_marking.review_table


def refuse(operation: str, marker: str) -> Callable:
    """A ``before-send`` hook: DynamoDB's AccessDeniedException for ``operation`` requests whose
    body names ``marker`` (a table, an item key); botocore raises its real ClientError."""

    def before_send(request, **_):
        body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
        if request.headers.get("X-Amz-Target", b"").endswith(operation.encode()) and marker in body:
            payload = json.dumps(
                {
                    "__type": "com.amazonaws.dynamodb.v20120810#AccessDeniedException",
                    "message": "User is not authorized to perform: dynamodb:" + operation,
                }
            ).encode()
            headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "DENIED"}
            return AWSResponse(request.url, 400, headers, _Body(payload))
        return None

    return before_send


def refusing(aws, operation: str, marker: str):
    client = aws_client("dynamodb", aws.endpoint_url)
    client.meta.events.register(f"before-send.dynamodb.{operation}", refuse(operation, marker))
    return client


def emitted(capsys, name: str) -> float:
    """The total of metric ``name`` in the EMF blobs printed so far (flushing what is pending)."""
    with warnings.catch_warnings():  # "no application metrics": nothing pending is fine here
        warnings.simplefilter("ignore", UserWarning)
        metrics.flush_metrics(raise_on_empty_metrics=False)
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    return sum(sum(blob.get(name, [])) for blob in blobs)


@pytest.fixture
def installed():
    def install(app):
        wiring.install_app(app)
        return app

    yield install
    wiring.install_app(None)


def test_a_failed_review_entry_is_counted_and_gives_its_slot_back_and_a_redelivery_marks_it(
    aws, make_app, frames, review_table, installed, capsys
):
    key = "frames/cam-21/grey.jpg"  # unknown: always marked
    record = frames.put(key, jpeg(GREY))
    event = sqs_event(("m-1", [record]))
    installed(make_app(review_table=review_table, dynamodb=refusing(aws, "PutItem", review_table)))
    capsys.readouterr()

    assert lambda_handler(event, CONTEXT) == {"batchItemFailures": []}  # the result stands

    result = item_of(aws, key, record["s3"]["object"]["eTag"])
    assert (result["status"], result["label"], result["review_reason"]) == ("ok", "unknown", "unknown")
    assert (emitted(capsys, "ReviewFailures"), emitted(capsys, "ReviewMarked")) == (1, 0)
    assert entries(aws, review_table) == [] and quota(aws, review_table, "cam-21") == 0  # slot returned

    # Delivered again once the table takes writes (SQS redelivers it, e.g. because another message
    # of its batch failed): the committed result's mark follows.
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "2"
    installed(make_app(review_table=review_table))
    assert lambda_handler(event, CONTEXT) == {"batchItemFailures": []}
    assert [e["key"]["S"] for e in entries(aws, review_table)] == [key]
    assert quota(aws, review_table, "cam-21") == 1
    # And once more: the entry is there, so nothing new, and the slot taken for it goes back.
    assert lambda_handler(event, CONTEXT) == {"batchItemFailures": []}
    assert len(entries(aws, review_table)) == 1 and quota(aws, review_table, "cam-21") == 1
    assert (emitted(capsys, "ReviewMarked"), emitted(capsys, "ReviewFailures")) == (1, 0)


@pytest.fixture
def state_names(aws) -> StackNames:
    names = StackNames.for_stage(unique_name("effects"))
    create_state_resources(aws.endpoint_url, names)
    return names


def test_a_failed_state_write_is_counted_and_the_result_stands(
    aws, make_app, frames, state_names, installed, capsys
):
    denied = refusing(aws, "PutItem", state_names.state_table)
    installed(make_app(state_table=state_names.state_table, dynamodb=denied))
    key = "frames/cam-22/20261122T120000000Z.jpg"
    record = frames.put(key, jpeg(RED))
    capsys.readouterr()

    assert lambda_handler(sqs_event(("m-1", [record])), CONTEXT) == {"batchItemFailures": []}

    assert item_of(aws, key, record["s3"]["object"]["eTag"])["label"] == "bus"
    assert emitted(capsys, "StateFailures") == 1
    state = aws.dynamodb.get_item(
        TableName=state_names.state_table, Key={"camera_id": {"S": "cam-22"}, "item": {"S": "state"}}
    )
    assert "Item" not in state


def test_events_pushed_out_of_a_full_outbox_are_counted(aws, state_names, capsys):
    # Event items cannot be written (the state item can): closed episodes pile up in the outbox.
    denied = refusing(aws, "PutItem", '"event#')
    states = CameraStates(state_names.state_table, denied, SmoothingConfig(default=Rule(k=1)))
    capsys.readouterr()
    for second in range(MAX_OUTBOX + 6):  # bus, car, bus, ...: every frame changes the state
        label = ("bus", "car")[second % 2]
        states.observe("cam-23", [Frame(f"2026-11-22T12:00:{second:02d}.000Z", f"k{second}@v", label, 0.9)])

    state = states.load("cam-23")
    closed = state.episode.number - 1  # every episode before the open one
    assert len(state.unwritten) == MAX_OUTBOX
    assert emitted(capsys, "OutboxDropped") == closed - MAX_OUTBOX > 0


def test_a_failed_shadow_record_is_counted_and_the_live_result_stands(
    aws, make_app, frames, tiny_model, installed, capsys
):
    app = installed(make_app(dynamodb=refusing(aws, "UpdateItem", aws.table)))
    app.shadow = ShadowScorer(model=tiny_model, sample_rate=1.0)
    key = "frames/cam-24/red.jpg"
    record = frames.put(key, jpeg(RED))
    capsys.readouterr()

    assert lambda_handler(sqs_event(("m-1", [record])), CONTEXT) == {"batchItemFailures": []}

    result = item_of(aws, key, record["s3"]["object"]["eTag"])
    assert result["label"] == "bus" and "shadow_label" not in result
    assert emitted(capsys, "ShadowFailures") == 1


def test_only_this_events_own_result_has_its_side_effects_completed(
    aws, make_app, frames, state_names, installed
):
    """A backfill task (no sequencer) meeting the live result of an S3 event leaves its effects
    alone: they are that event's. Here they would cost a state write: the frame has left the
    camera's window (keep=2), so observing it again would record it as late."""
    from tests.functional.test_model_versions import batch_event, run

    rule = SmoothingConfig(default=Rule(keep=2))
    app = installed(make_app(state_table=state_names.state_table, smoothing=rule))
    keys = [f"frames/cam-25/20261122T12000{second}000Z.jpg" for second in range(3)]
    records = [frames.put(key, jpeg(RED)) for key in keys]
    for index, record in enumerate(records):
        assert lambda_handler(sqs_event((f"m-{index}", [record])), CONTEXT) == {"batchItemFailures": []}
    before = app.camera_state.load("cam-25")
    assert len(before.window) == 2 and before.ignored == ()  # the first frame has left the window

    assert run(app, batch_event(aws.bucket, keys[:1], {})) == [
        ("Succeeded", "duplicate: result already recorded")
    ]
    assert app.camera_state.load("cam-25") == before  # not touched

    # A redelivery of the S3 event that wrote it does complete (here: records it as late).
    redelivered = sqs_event(("m-0", [records[0]]))
    redelivered["Records"][0]["attributes"]["ApproximateReceiveCount"] = "2"
    assert lambda_handler(redelivered, CONTEXT) == {"batchItemFailures": []}
    after = app.camera_state.load("cam-25")
    assert after.version == before.version + 1 and len(after.ignored) == 1


def test_a_covered_camera_is_counted_once_and_its_state_says_so(
    aws, make_app, frames, state_names, installed, capsys
):
    """Three uniform frames in one invocation: one state write takes them in capture order, the
    third makes the camera covered, and the change is counted (EMF CameraHealthChanged)."""
    app = installed(make_app(state_table=state_names.state_table))
    records = [frames.put(f"frames/cam-26/20261122T12000{second}000Z.jpg", jpeg(RED)) for second in (2, 0, 1)]
    capsys.readouterr()
    event = sqs_event(*((f"m-{index}", [record]) for index, record in enumerate(records)))
    assert lambda_handler(event, CONTEXT) == {"batchItemFailures": []}

    health = app.camera_state.load("cam-26").health
    assert (health.status, health.since) == ("covered", "2026-11-22T12:00:00.000Z")
    assert emitted(capsys, "CameraHealthChanged") == 1
