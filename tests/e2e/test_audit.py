"""`camsort audit` on the local system: versions vs results vs DLQ, redrive, the versionId path."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from camsort.cli import main
from functions.archive.accounting import ObjectVersion
from functions.archive.audit import notification_body
from infra.demo.accounting import scan_results
from infra.local.faults import FaultInjectingProxy, s3_access_denied
from infra.ops.audit_report import AuditTarget, audit_stack, redrive
from tests.fixtures.local_stack import LENIENT_TIMEOUT_S

pytestmark = pytest.mark.e2e


def stage_of(local_stack) -> str:
    return local_stack.names.bucket.removeprefix("camsort-frames-")


def put(local_stack, key: str, body: bytes) -> dict:
    return local_stack.client("s3").put_object(Bucket=local_stack.names.bucket, Key=key, Body=body)


def queue_depth(local_stack, url: str) -> int:
    attributes = local_stack.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


@pytest.mark.parametrize("function_timeout_s", [LENIENT_TIMEOUT_S])
def test_lost_notifications_are_unaccounted_exit_1_and_redrive_accounts_for_them(local_stack, run_worker):
    from training.data.synthetic import frame_jpeg

    keys = [f"frames/cam-0{i}/20261122T07390{i}000Z.jpg" for i in range(3)]
    for i, key in enumerate(keys):
        put(local_stack, key, frame_jpeg("car", i))
    # The notifications vanish (as the case-sensitive suffix rules made them vanish).
    local_stack.client("sqs").purge_queue(QueueUrl=local_stack.queue_url)

    args = [
        "audit",
        "--stage",
        stage_of(local_stack),
        "--endpoint-url",
        local_stack.endpoint_url,
        "--grace",
        "0s",
    ]
    before = CliRunner().invoke(main, [*args, "--json"])
    assert before.exit_code == 1, before.output
    report = json.loads(before.output)
    assert report["counts"]["unaccounted"] == 3
    assert sorted(v["key"] for v in report["unaccounted"]) == keys

    # A grace period longer than their age: pending, not unaccounted, exit 0.
    assert CliRunner().invoke(main, [*args[:-1], "1h"]).exit_code == 0

    target = AuditTarget.of_stack(local_stack)
    assert redrive(target, audit_stack(local_stack)) == 3
    run_worker()
    after = audit_stack(local_stack)
    assert after.counts["ok"] == 3 and after.clean
    table = CliRunner().invoke(main, args)
    assert table.exit_code == 0, table.output
    assert "UNACCOUNTED" in table.output


def test_dead_lettered_versions_are_accounted_and_the_dlq_is_not_consumed(local_stack, run_worker):
    from training.data.synthetic import frame_jpeg

    put(local_stack, "frames/cam-01/a.jpg", frame_jpeg("car", 1))
    put(local_stack, "frames/cam-01/b.jpg", frame_jpeg("bus", 2))
    with FaultInjectingProxy(
        local_stack.endpoint_url, [s3_access_denied("frames/cam-01/a.jpg", times=None)]
    ) as proxy:
        run_worker(endpoint_url=proxy.endpoint_url)
    assert queue_depth(local_stack, local_stack.dead_letter_queue_url) == 1

    for _ in range(2):  # twice: the first audit must leave the DLQ as it found it
        report = audit_stack(local_stack)
        assert (report.counts["ok"], report.counts["dead_lettered"], report.dlq_messages) == (1, 1, 1)
        assert report.clean
        assert queue_depth(local_stack, local_stack.dead_letter_queue_url) == 1
    message = local_stack.client("sqs").receive_message(QueueUrl=local_stack.dead_letter_queue_url)[
        "Messages"
    ]
    assert len(message) == 1  # visible again at once, not hidden for the audit's hide time


def crafted(local_stack, key: str, response: dict, size: int) -> str:
    """The notification real S3 sends for one version: with its versionId (moto omits it)."""
    listed = local_stack.client("s3").head_object(
        Bucket=local_stack.names.bucket, Key=key, VersionId=response["VersionId"]
    )
    version = ObjectVersion(
        key=key,
        version_id=response["VersionId"],
        etag=response["ETag"].strip('"'),
        size=size,
        last_modified=listed["LastModified"].astimezone(UTC),
    )
    return notification_body(
        local_stack.names.bucket, version, region=local_stack.region, event_name="ObjectCreated:Put"
    )


@pytest.mark.parametrize("function_timeout_s", [LENIENT_TIMEOUT_S])
def test_version_id_path_every_version_of_a_key_gets_its_own_result(local_stack, run_worker):
    from training.data.synthetic import frame_jpeg

    key = "frames/cam-03/20261122T073900123Z.jpg"
    first, second = frame_jpeg("car", 1), frame_jpeg("bus", 2)
    responses = [put(local_stack, key, first), put(local_stack, key, second)]
    sqs = local_stack.client("sqs")
    sqs.purge_queue(QueueUrl=local_stack.queue_url)  # moto's bodies (no versionId) replaced by S3's
    for response, body in zip(responses, (first, second), strict=True):
        sqs.send_message(
            QueueUrl=local_stack.queue_url, MessageBody=crafted(local_stack, key, response, len(body))
        )
    run_worker()

    items = {item["object_version"]: item for item in scan_results(local_stack)}
    assert set(items) == {r["VersionId"] for r in responses}  # keyed by versionId, one each
    assert {item["status"] for item in items.values()} == {"ok"}  # the older one too: read by VersionId
    assert {items[r["VersionId"]]["etag"] for r in responses} == {r["ETag"].strip('"') for r in responses}
    report = audit_stack(local_stack)
    assert (report.counts["ok"], report.counts["superseded"]) == (2, 0) and report.clean


@pytest.mark.parametrize("function_timeout_s", [LENIENT_TIMEOUT_S])
def test_without_version_ids_a_rapid_overwrite_is_superseded_and_accounted(local_stack, run_worker):
    from training.data.synthetic import frame_jpeg

    key = "frames/cam-04/20261122T073900123Z.jpg"
    put(local_stack, key, frame_jpeg("car", 1))
    put(local_stack, key, frame_jpeg("bus", 2))  # before the first is read: moto's events, no versionId
    run_worker()

    statuses = sorted((item["status"], item.get("reason")) for item in scan_results(local_stack))
    assert statuses == [("ok", None), ("rejected", "superseded")]
    report = audit_stack(local_stack)
    assert (report.counts["ok"], report.counts["superseded"]) == (1, 1) and report.clean
    since = datetime.now(UTC) - timedelta(hours=1)
    assert all(
        datetime.fromisoformat(v.last_modified.replace("Z", "+00:00")) > since for v in report.versions
    )


def test_the_scheduled_audit_function_publishes_unaccounted_as_emf(local_stack, monkeypatch, capsys):
    from functions import audit_handler, env
    from functions.observability import LocalLambdaContext
    from infra.local.moto_server import LOCAL_AWS_ENV

    put(local_stack, "frames/cam-01/a.jpg", b"\xff\xd8 not really")
    put(local_stack, "frames/cam-01/b.jpg", b"\xff\xd8 not really either")
    local_stack.client("sqs").purge_queue(QueueUrl=local_stack.queue_url)  # both notifications lost
    for name, value in {
        **LOCAL_AWS_ENV,
        "AWS_DEFAULT_REGION": local_stack.region,
        env.AWS_ENDPOINT_URL: local_stack.endpoint_url,
        env.FRAMES_BUCKET: local_stack.names.bucket,
        env.RESULTS_TABLE: local_stack.names.table,
        env.DEAD_LETTER_QUEUE_URL: local_stack.dead_letter_queue_url,
        env.AUDIT_WINDOW_MINUTES: "60",
        env.AUDIT_GRACE_MINUTES: "1",
        env.AUDIT_LISTING: "full",  # these names are not capture times (the default listing's)
    }.items():
        monkeypatch.setenv(name, value)
    audit_handler._clients.cache_clear()
    capsys.readouterr()

    # Younger than the grace period: pending, the metric says 0.
    answer = audit_handler.lambda_handler({"source": "aws.events"}, LocalLambdaContext())
    assert (answer["counts"]["pending"], answer["counts"]["unaccounted"]) == (2, 0)
    # Two minutes later (the same versions, now past the grace): 2 unaccounted.
    later = datetime.now(UTC) + timedelta(minutes=2)
    s3, ddb, sqs = audit_handler._clients()
    assert (
        audit_handler.audit_once(s3_client=s3, dynamodb_client=ddb, sqs_client=sqs, now=later)["counts"][
            "unaccounted"
        ]
        == 2
    )
    from functions.observability import metrics

    metrics.flush_metrics()
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert [blob["Unaccounted"] for blob in emf] == [[0.0], [2.0]]
    assert [blob["AuditHeartbeat"] for blob in emf] == [[1.0], [1.0]]  # one per completed run
    audit_handler._clients.cache_clear()


def test_time_named_listing_reads_each_camera_from_the_window_start_only(local_stack):
    from functions.archive.audit import LISTING_TIME_NAMED
    from infra.ops.audit_report import audit

    now = datetime.now(UTC)
    recent = now.strftime("%Y%m%dT%H%M%S000Z")
    put(local_stack, f"frames/cam-01/{recent}.jpg", b"x")
    put(local_stack, "frames/cam-01/20200101T000000000Z.jpg", b"x")  # a name from long before the window
    put(local_stack, f"frames/cam-02/{recent}.jpg", b"x")
    window = {
        "since": now - timedelta(minutes=10),
        "until": now + timedelta(minutes=1),
        "grace": timedelta(hours=1),
    }
    target = AuditTarget.of_stack(local_stack)

    full = audit(target, **window)
    named = audit(target, **window, listing=LISTING_TIME_NAMED)
    assert len(full.versions) == 3  # all were uploaded just now
    assert sorted(v.key for v in named.versions) == [
        f"frames/cam-01/{recent}.jpg",
        f"frames/cam-02/{recent}.jpg",
    ]


def test_the_dlq_is_read_to_its_count_and_left_as_it_was(local_stack):
    from functions.archive.audit import DeadLetterReader

    sqs, url = local_stack.client("sqs"), local_stack.dead_letter_queue_url
    reader = DeadLetterReader(sqs, url)
    assert reader.bodies(wait_s=1) == []  # an empty queue: its count says so, no receive waits
    bodies = [json.dumps({"n": n}) for n in range(25)]  # more than one receive's 10
    for start in range(0, len(bodies), 10):
        sqs.send_message_batch(
            QueueUrl=url,
            Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])],
        )
    for _ in range(2):  # and again: nothing was consumed or left hidden
        assert sorted(reader.bodies(wait_s=1), key=lambda b: json.loads(b)["n"]) == bodies
        assert queue_depth(local_stack, url) == 25
