"""`camsort backfill`'s library: selection (listing, inventory, LastModified, only-missing), cost, the
local path end to end through the real handler, and the AWS path's CreateJob/DescribeJob calls
checked against botocore's s3control model (Stubber validates every parameter)."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from botocore.stub import ANY, Stubber
from PIL import Image

from functions import wiring
from functions.handler import handle
from functions.settings import Settings
from functions.stores.results import ResultsTable
from infra.deploy.topology import FUNCTION_MEMORY_MB
from infra.local.batch_report import TaskResult, parse_manifest_csv, report_files
from infra.ops.backfill import BackfillRequest, run_backfill_locally, run_backfill_on_aws
from infra.ops.backfill_manifest import estimate_cost, inventory_frames, list_frames
from tests.fixtures.aws import aws_client


def jpeg(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


@pytest.fixture
def invoke(aws, tiny_model, tmp_path):
    settings = Settings(model_uri="unused", results_table=aws.table, model_cache_dir=str(tmp_path / "m"))
    app = wiring.build_app(settings, s3_client=aws.s3, dynamodb_client=aws.dynamodb, model=tiny_model)
    return lambda event: handle(event, lambda: app)


def put_frames(aws, n: int, prefix="frames/cam-01/") -> list[str]:
    keys = [f"{prefix}{i:03d}.jpg" for i in range(n)]
    for key in keys:
        aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=jpeg((255, 0, 0)))
    return keys


def test_listing_keeps_the_prefix_and_the_last_modified_range(aws):
    keys = put_frames(aws, 3)
    put_frames(aws, 2, prefix="other/")
    listed = list_frames(aws.s3, aws.bucket, "frames/")
    assert [c.key for c in listed] == keys
    moment = listed[0].last_modified
    assert list_frames(aws.s3, aws.bucket, "frames/", since=moment + timedelta(days=1)) == []
    assert (
        len(
            list_frames(
                aws.s3,
                aws.bucket,
                "frames/",
                since=moment - timedelta(days=1),
                until=moment + timedelta(days=1),
            )
        )
        == 3
    )


def test_versioned_bucket_lists_the_current_version_ids(aws, s3_client, versioned_frames_bucket):
    s3_client.put_object(Bucket=versioned_frames_bucket, Key="frames/cam-01/a.jpg", Body=jpeg((0, 0, 255)))
    current = s3_client.put_object(
        Bucket=versioned_frames_bucket, Key="frames/cam-01/a.jpg", Body=jpeg((0, 255, 0))
    )
    (candidate,) = list_frames(s3_client, versioned_frames_bucket, "frames/")
    assert candidate.version_id == current["VersionId"] == candidate.object_version


def test_inventory_report_is_read_with_its_schema(aws):
    modified = "2026-11-20T10:00:00.000Z"
    rows = [
        [aws.bucket, "frames/cam-01/a%20b.jpg", "100", modified, "etag-a"],
        [aws.bucket, "other/x.jpg", "100", modified, "etag-x"],
        [aws.bucket, "frames/cam-02/c.jpg", "200", "2026-11-25T10:00:00.000Z", "etag-c"],
    ]
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    aws.s3.put_object(
        Bucket=aws.bucket, Key="inv/data/1.csv.gz", Body=gzip.compress(text.getvalue().encode())
    )
    manifest = {
        "sourceBucket": aws.bucket,
        "destinationBucket": f"arn:aws:s3:::{aws.bucket}",
        "fileFormat": "CSV",
        "fileSchema": "Bucket, Key, Size, LastModifiedDate, ETag",
        "files": [{"key": "inv/data/1.csv.gz", "size": 1, "MD5checksum": "x"}],
    }
    aws.s3.put_object(Bucket=aws.bucket, Key="inv/manifest.json", Body=json.dumps(manifest).encode())
    found = inventory_frames(
        aws.s3, f"s3://{aws.bucket}/inv/manifest.json", "frames/", until=datetime(2026, 11, 21, tzinfo=UTC)
    )
    assert [(c.key, c.etag, c.size) for c in found] == [("frames/cam-01/a b.jpg", "etag-a", 100)]


def test_cost_estimate_adds_batch_operations_and_lambda():
    estimate = estimate_cost(1_000_000, per_frame_s=0.088, memory_mb=3538)
    assert estimate.batch_usd == pytest.approx(1.25)
    assert estimate.lambda_requests_usd == pytest.approx(0.20)
    assert estimate.lambda_compute_usd == pytest.approx(1e6 * 0.088 * 3538 / 1024 * 0.0000133334)


def test_local_backfill_then_only_missing_selects_nothing(aws, invoke):
    keys = put_frames(aws, 4)
    aws.s3.put_object(Bucket=aws.bucket, Key="frames/cam-01/broken.jpg", Body=b"\xff\xd8 truncated")
    table = ResultsTable(aws.table, aws.dynamodb)
    request = BackfillRequest(source=f"s3://{aws.bucket}/frames/", per_frame_ms=88.0)

    dry = run_backfill_locally(
        BackfillRequest(**{**request.__dict__, "dry_run": True}), s3=aws.s3, table=table, invoke=invoke
    )
    assert (dry.listed, dry.selected, dry.job_id) == (5, 5, None)
    assert "Contents" not in aws.s3.list_objects_v2(Bucket=aws.bucket, Prefix="batch/")

    outcome = run_backfill_locally(request, s3=aws.s3, table=table, invoke=invoke, retry_pause_s=0)
    assert (outcome.status, outcome.succeeded, outcome.failed) == ("Complete", 4, 1)
    assert outcome.failed_by_reason == {"PermanentFailure: rejected (not_jpeg_or_png)": 1}
    manifest_key = outcome.manifest_uri.removeprefix(f"s3://{aws.bucket}/")
    body = aws.s3.get_object(Bucket=aws.bucket, Key=manifest_key)["Body"].read().decode()
    assert [e.key for e in parse_manifest_csv(body, "m")] == sorted([*keys, "frames/cam-01/broken.jpg"])
    assert len(table.query_camera("cam-01")) == 5  # 4 ok + 1 rejected, all live results

    missing = BackfillRequest(**{**request.__dict__, "only_missing": True})
    again = run_backfill_locally(missing, s3=aws.s3, table=table, invoke=invoke)
    assert (again.listed, again.selected, again.job_id) == (5, 0, None)


def test_aws_path_creates_a_lambda_invoke_job_watches_it_and_reads_the_report(aws):
    put_frames(aws, 3)
    s3control = aws_client("s3control", aws.endpoint_url)
    stubber = Stubber(s3control)
    expected_create = {
        "AccountId": "123456789012",
        "ConfirmationRequired": False,
        "Operation": {
            "LambdaInvoke": {
                "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:camsort-dev-classify",
                "InvocationSchemaVersion": "2.0",
                "UserArguments": {"mode": "classify"},
            }
        },
        "Report": {
            "Bucket": f"arn:aws:s3:::{aws.bucket}",
            "Prefix": "batch/reports",
            "Format": "Report_CSV_20180820",
            "Enabled": True,
            "ReportScope": "FailedTasksOnly",
        },
        "ClientRequestToken": ANY,
        "Manifest": {
            "Spec": {"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]},
            "Location": {"ObjectArn": ANY, "ETag": ANY},
        },
        "Description": "camsort backfill classify live model",
        "Priority": 7,
        "RoleArn": "arn:aws:iam::123456789012:role/camsort-dev-batch-operations",
    }
    job_id = "00e123a4-c0d8-41f4-a0eb-b46f9ba5b07c"
    stubber.add_response("create_job", {"JobId": job_id}, expected_create)

    def described(status, succeeded, failed):
        return {
            "Job": {
                "JobId": job_id,
                "Status": status,
                "Priority": 7,
                "ProgressSummary": {
                    "TotalNumberOfTasks": 3,
                    "NumberOfTasksSucceeded": succeeded,
                    "NumberOfTasksFailed": failed,
                },
            }
        }

    for response in (described("Active", 1, 0), described("Complete", 2, 1)):
        stubber.add_response("describe_job", response, {"AccountId": "123456789012", "JobId": job_id})
    # What AWS would have written when the job completed: the failed task's report.
    failed = TaskResult(
        aws.bucket,
        "frames/cam-01/002.jpg",
        None,
        "failed",
        "PermanentFailure",
        200,
        "rejected (truncated_or_corrupt): ...",
    )
    for key, body in report_files(job_id, aws.bucket, "batch/reports", [failed], failed_only=True).items():
        aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=body)

    progress, sleeps = [], []
    with stubber:
        outcome = run_backfill_on_aws(
            BackfillRequest(source=f"s3://{aws.bucket}/frames/", priority=7, per_frame_ms=88.0),
            s3=aws.s3,
            s3control=s3control,
            table=None,
            account_id="123456789012",
            function_arn="arn:aws:lambda:us-east-1:123456789012:function:camsort-dev-classify",
            role_arn="arn:aws:iam::123456789012:role/camsort-dev-batch-operations",
            progress=lambda done, total: progress.append((done, total)),
            sleep=sleeps.append,
        )
    stubber.assert_no_pending_responses()
    assert progress == [(1, 3), (3, 3)] and sleeps == [10.0]
    assert (outcome.job_id, outcome.status, outcome.succeeded, outcome.failed) == (job_id, "Complete", 2, 1)
    assert outcome.failed_by_reason == {"PermanentFailure: rejected (truncated_or_corrupt)": 1}
    manifest = (
        aws.s3.get_object(Bucket=aws.bucket, Key=outcome.manifest_uri.split("/", 3)[3])["Body"]
        .read()
        .decode()
    )
    assert [e.key for e in parse_manifest_csv(manifest, "m")] == [
        f"frames/cam-01/{i:03d}.jpg" for i in range(3)
    ]


def test_cli_dry_run_prints_counts_and_cost_and_writes_nothing(aws, aws_env):
    from click.testing import CliRunner

    from camsort.cli import main

    put_frames(aws, 3)
    options = ["--endpoint-url", aws.endpoint_url, "--table", aws.table, "--per-frame-ms", "88", "--dry-run"]
    result = CliRunner().invoke(main, ["backfill", f"s3://{aws.bucket}/frames/", *options, "--json"])
    assert result.exit_code == 0, result.output
    outcome = json.loads(result.output)
    assert (outcome["listed"], outcome["selected"], outcome["job_id"]) == (3, 3, None)
    # Without --memory-mb the estimate prices the memory the backfill function deploys with.
    assert outcome["estimate_total_usd"] == pytest.approx(
        estimate_cost(3, per_frame_s=0.088, memory_mb=FUNCTION_MEMORY_MB).total_usd, abs=1e-6
    )
    assert "Contents" not in aws.s3.list_objects_v2(Bucket=aws.bucket, Prefix="batch/")
    table = CliRunner().invoke(main, ["backfill", f"s3://{aws.bucket}/frames/", *options])
    assert table.exit_code == 0 and "dry run: nothing written" in table.output
