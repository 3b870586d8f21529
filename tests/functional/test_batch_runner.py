"""The local S3 Batch Operations runner: the real handler (tiny model), moto over HTTP, AWS's file formats."""

from __future__ import annotations

import io
import json

import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from PIL import Image

from functions import wiring
from functions.handler import handle
from functions.settings import Settings
from infra.local.batch_report import (
    REPORT_FORMAT,
    REPORT_SCHEMA,
    ManifestEntry,
    manifest_csv,
    read_report,
    summarise,
)
from infra.local.batch_runner import LocalJob, run_local_job
from tests.fixtures.aws import aws_client

# One HTTP request per call: each throttled PutItem is one failed invocation.
NO_RETRIES = Config(connect_timeout=2, read_timeout=10, retries={"mode": "standard", "total_max_attempts": 1})


def jpeg(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


class _Body:
    def __init__(self, data: bytes):
        self._data = data

    def stream(self, **_):
        yield self._data


def throttle_first_put_items(key: str, times: int):
    """DynamoDB answers the first ``times`` PutItems for ``key`` with a real throttling error."""
    left = {"n": times}

    def before_send(request, **_):
        body = request.body.decode() if isinstance(request.body, bytes) else (request.body or "")
        target = request.headers.get("X-Amz-Target", b"")
        if target.endswith(b"PutItem") and json.dumps(key)[1:-1] in body and left["n"] > 0:
            left["n"] -= 1
            payload = json.dumps(
                {
                    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                    "message": "slow down",
                }
            ).encode()
            return AWSResponse(
                request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, _Body(payload)
            )
        return None

    return before_send


@pytest.fixture
def make_invoke(aws, tiny_model, tmp_path):
    def build(dynamodb=None):
        settings = Settings(
            model_uri="unused: model injected", results_table=aws.table, model_cache_dir=str(tmp_path / "m")
        )
        app = wiring.build_app(
            settings, s3_client=aws.s3, dynamodb_client=dynamodb or aws.dynamodb, model=tiny_model
        )
        return lambda event: handle(event, lambda: app)

    return build


def put_manifest(aws, entries) -> str:
    aws.s3.put_object(Bucket=aws.bucket, Key="jobs/manifest.csv", Body=manifest_csv(entries).encode())
    return "jobs/manifest.csv"


def test_runner_invokes_each_task_retries_temporary_failures_and_writes_the_report(aws, make_invoke):
    keys = [
        "frames/cam-01/a b+c.jpg",
        "frames/cam-01/b.jpg",
        "frames/cam-01/bad.jpg",
        "frames/cam-01/slow.jpg",
    ]
    for key in keys:
        aws.s3.put_object(
            Bucket=aws.bucket, Key=key, Body=b"GIF89a no" if "bad" in key else jpeg((255, 0, 0))
        )
    entries = [ManifestEntry(aws.bucket, key) for key in keys] + [
        ManifestEntry(aws.bucket, "frames/cam-01/gone.jpg")
    ]
    dynamodb = aws_client("dynamodb", aws.endpoint_url, NO_RETRIES)
    dynamodb.meta.events.register(
        "before-send.dynamodb.PutItem", throttle_first_put_items("slow.jpg", times=2)
    )
    job = LocalJob(
        manifest_bucket=aws.bucket,
        manifest_key=put_manifest(aws, entries),
        report_bucket=aws.bucket,
        report_prefix="reports/",
        user_arguments={"mode": "classify"},
        concurrency=2,
        max_attempts=3,
        retry_pause_s=0,
        job_id="job-1",
    )
    seen = []
    outcome = run_local_job(
        aws.s3, job, make_invoke(dynamodb), progress=lambda done, total: seen.append((done, total))
    )

    assert (outcome.total, outcome.succeeded, outcome.failed) == (5, 3, 2)
    assert outcome.attempts == 5 + 2  # the throttled frame took three invocations
    assert sorted(seen) == [(n, 5) for n in range(1, 6)]
    manifest = json.loads(
        aws.s3.get_object(Bucket=aws.bucket, Key="reports/job-job-1/manifest.json")["Body"].read()
    )
    assert outcome.report_manifest_key == "reports/job-job-1/manifest.json"
    assert (manifest["Format"], manifest["ReportSchema"]) == (REPORT_FORMAT, REPORT_SCHEMA)
    assert [r["TaskExecutionStatus"] for r in manifest["Results"]] == ["succeeded", "failed"]
    assert all(r["Key"].startswith("reports/job-job-1/results/") for r in manifest["Results"])

    rows = read_report(aws.s3, aws.bucket, outcome.report_manifest_key)
    assert {(r.key, r.status, r.error_code) for r in rows} == {
        ("frames/cam-01/a b+c.jpg", "succeeded", ""),
        ("frames/cam-01/b.jpg", "succeeded", ""),
        ("frames/cam-01/slow.jpg", "succeeded", ""),
        ("frames/cam-01/bad.jpg", "failed", "PermanentFailure"),
        ("frames/cam-01/gone.jpg", "failed", "PermanentFailure"),
    }
    assert summarise(rows)["failed_by_reason"] == {
        "PermanentFailure: rejected (not_jpeg_or_png)": 1,
        "PermanentFailure: rejected (superseded)": 1,
    }
    # The CSV rows are AWS's: bucket, URL-encoded key, version, status, HTTP status, error code, message.
    failed_csv = next(r for r in manifest["Results"] if r["TaskExecutionStatus"] == "failed")
    first = (
        aws.s3.get_object(Bucket=aws.bucket, Key=failed_csv["Key"])["Body"].read().decode().splitlines()[0]
    )
    assert first.startswith(f"{aws.bucket},frames/cam-01/bad.jpg,,failed,200,PermanentFailure,")
    succeeded_csv = next(r for r in manifest["Results"] if r["TaskExecutionStatus"] == "succeeded")
    body = aws.s3.get_object(Bucket=aws.bucket, Key=succeeded_csv["Key"])["Body"].read().decode()
    assert f"{aws.bucket},frames/cam-01/a%20b%2Bc.jpg,,succeeded,200,,ok: bus" in body


def test_temporary_failures_that_persist_fail_the_task_and_failed_only_reports_skip_successes(
    aws, make_invoke
):
    aws.s3.put_object(Bucket=aws.bucket, Key="frames/cam-01/ok.jpg", Body=jpeg((0, 255, 0)))
    aws.s3.put_object(Bucket=aws.bucket, Key="frames/cam-01/slow.jpg", Body=jpeg((0, 255, 0)))
    dynamodb = aws_client("dynamodb", aws.endpoint_url, NO_RETRIES)
    dynamodb.meta.events.register(
        "before-send.dynamodb.PutItem", throttle_first_put_items("slow.jpg", times=99)
    )
    entries = [
        ManifestEntry(aws.bucket, "frames/cam-01/ok.jpg"),
        ManifestEntry(aws.bucket, "frames/cam-01/slow.jpg"),
    ]
    job = LocalJob(
        aws.bucket,
        put_manifest(aws, entries),
        aws.bucket,
        "",
        failed_only=True,
        max_attempts=2,
        retry_pause_s=0,
    )
    outcome = run_local_job(aws.s3, job, make_invoke(dynamodb))
    assert (outcome.succeeded, outcome.failed, outcome.attempts) == (1, 1, 3)
    rows = read_report(aws.s3, aws.bucket, outcome.report_manifest_key)
    assert [(r.key, r.error_code) for r in rows] == [("frames/cam-01/slow.jpg", "TemporaryFailure")]
    assert rows[0].message.endswith("(retried 2 times)")


def test_function_errors_and_malformed_responses_fail_the_task(aws):
    entries = [ManifestEntry(aws.bucket, "frames/x.jpg"), ManifestEntry(aws.bucket, "frames/y.jpg")]

    def invoke(event):
        if event["tasks"][0]["s3Key"].endswith("x.jpg"):
            raise RuntimeError("Task timed out after 3.00 seconds")
        return {"invocationId": "someone else's", "results": []}

    job = LocalJob(aws.bucket, put_manifest(aws, entries), aws.bucket, "r", retry_pause_s=0)
    outcome = run_local_job(aws.s3, job, invoke)
    assert [(r.error_code, r.message) for r in outcome.results] == [
        (
            "PermanentFailure",
            "Lambda returned function error: RuntimeError: Task timed out after 3.00 seconds",
        ),
        (
            "PermanentFailure",
            f"Lambda returned an invalid response: invocationId \"someone else's\" is not '{job.job_id}-1-1'",
        ),
    ]
