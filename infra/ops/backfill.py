"""`camsort backfill s3://bucket/prefix`: run the stored archive through the function.

1. list the frames (or read an S3 Inventory report), keep LastModified in [--since, --until],
   with --only-missing drop those that already have a result (live, or --model-version's);
2. --dry-run: counts and the estimated cost, nothing written;
3. write the CSV manifest to ``s3://<bucket>/batch/manifests/`` (never under the frames prefix:
   it would be announced as a frame);
4. on AWS: CreateJob (LambdaInvoke, schema 2.0, UserArguments with the mode and the model),
   DescribeJob until it ends (progress), then read the completion report; with
   --endpoint-url: the local runner (infra/local/batch_runner.py), same manifest, same report.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from functions.archive.jobs import JobArguments
from functions.errors import ConfigurationError
from functions.frames.manifest import MANIFEST_FILENAME
from functions.iam import requires
from infra import PROJECT_ROOT
from infra.deploy import topology
from infra.deploy.deploy_file import DEFAULT_MODEL, model_prefix
from infra.local.batch_report import ManifestEntry, TaskResult, manifest_csv, read_report, summarise
from infra.local.batch_runner import LocalJob, Progress, run_local_job
from infra.ops.backfill_manifest import (
    CostEstimate,
    estimate_cost,
    interleave_by_folder,
    inventory_frames,
    list_frames,
    parse_s3_uri,
    without_results,
)

MANIFEST_PREFIX = "batch/manifests/"
REPORT_PREFIX = "batch/reports/"
FEATURES_PREFIX = "features/"
BENCH_RESULTS = PROJECT_ROOT / "bench" / "results.json"
DONE = ("Complete", "Failed", "Cancelled")


@dataclass(frozen=True)
class BackfillRequest:
    source: str  # s3://bucket/prefix/
    since: datetime | None = None
    until: datetime | None = None
    only_missing: bool = False
    mode: str = "classify"
    model_version: str | None = None  # None: the function's live model
    model_uri: str | None = None  # another version's artifact (default s3://<bucket>/models/<version>/)
    model_name: str = DEFAULT_MODEL  # a named model's version: default s3://<bucket>/models/<name>/<version>/
    inventory: str | None = None  # s3://.../manifest.json of an S3 Inventory report
    dry_run: bool = False
    failed_only_report: bool = True
    priority: int = 10
    memory_mb: int = topology.FUNCTION_MEMORY_MB  # the deployed backfill function's
    per_frame_ms: float | None = None  # default: bench/results.json's int8 warm figure


@dataclass
class BackfillOutcome:
    listed: int
    selected: int
    estimate: CostEstimate
    manifest_uri: str | None = None
    job_id: str | None = None
    status: str | None = None
    succeeded: int = 0
    failed: int = 0
    failed_by_reason: dict[str, int] = field(default_factory=dict)
    report_rows: list[TaskResult] = field(default_factory=list)
    function_log: str | None = None  # locally: where the function's logs went
    compaction: dict[str, Any] | None = None  # featurize jobs: the Parquet compaction that followed


def bench_per_frame_ms(path: Path = BENCH_RESULTS) -> float:
    """The measured warm per-frame time of the shipped (int8) handler path, one frame per call."""
    try:
        results = json.loads(path.read_text())
        return float(results["paths"]["int8"]["warm_batch_1"]["p50_ms"])
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigurationError(
            f"{path}: no measured per-frame time ({exc}); run `make bench` or pass --per-frame-ms"
        ) from exc


def job_arguments(request: BackfillRequest, s3: Any, bucket: str) -> JobArguments:
    """userArguments for the job; another model version is pinned by its manifest's sha256."""
    features_uri = f"s3://{bucket}/{FEATURES_PREFIX}" if request.mode == "featurize" else None
    if not request.model_version:
        if request.model_name != DEFAULT_MODEL:
            raise ConfigurationError(
                f"--model {request.model_name}: a named model's backfill runs one of its versions; add --model-version"
            )
        return JobArguments(mode=request.mode, features_uri=features_uri)  # type: ignore[arg-type]
    uri = (
        request.model_uri
        or f"s3://{bucket}/{model_prefix('models/', request.model_name, request.model_version)}"
    )
    manifest = _read_model_manifest(s3, uri)
    if manifest.get("model_version") != request.model_version:
        raise ConfigurationError(
            f"{uri}{MANIFEST_FILENAME}: model version {manifest.get('model_version')!r}, not "
            f"{request.model_version!r}; pass the right --model-uri"
        )
    return JobArguments(
        mode=request.mode,  # type: ignore[arg-type]
        model_version=request.model_version,
        model_uri=uri,
        model_sha256=manifest["model_sha256"],
        features_uri=features_uri,
        model_name=request.model_name,
    )


def plan_backfill(
    request: BackfillRequest, s3: Any, table: Any | None
) -> tuple[int, list[ManifestEntry], CostEstimate]:
    """(objects listed, manifest entries, cost estimate): everything before any write."""
    bucket, prefix = parse_s3_uri(request.source, "source")
    if request.inventory:
        candidates = inventory_frames(s3, request.inventory, prefix, request.since, request.until)
    else:
        candidates = list_frames(s3, bucket, prefix, request.since, request.until)
    listed = len(candidates)
    if request.only_missing:
        if table is None:
            raise ConfigurationError("--only-missing needs the results table (--table)")
        candidates = without_results(table, candidates, request.model_version)
    candidates = interleave_by_folder(candidates, prefix)
    per_frame_ms = request.per_frame_ms if request.per_frame_ms is not None else bench_per_frame_ms()
    estimate = estimate_cost(len(candidates), per_frame_s=per_frame_ms / 1000, memory_mb=request.memory_mb)
    return listed, [c.entry() for c in candidates], estimate


@requires("s3:PutObject", resource="batch-manifests")
def write_manifest(s3: Any, bucket: str, entries: list[ManifestEntry], token: str) -> tuple[str, str]:
    """(key, ETag) of the CSV manifest written for this job."""
    key = f"{MANIFEST_PREFIX}backfill-{token}.csv"
    response = s3.put_object(
        Bucket=bucket, Key=key, Body=manifest_csv(entries).encode(), ContentType="text/csv"
    )
    return key, response["ETag"].strip('"')


@requires("s3:CreateJob", "iam:PassRole", resource="batch-jobs")
def create_job(
    s3control: Any,
    *,
    account_id: str,
    function_arn: str,
    role_arn: str,
    arguments: JobArguments,
    manifest_bucket: str,
    manifest_key: str,
    manifest_etag: str,
    with_versions: bool,
    report_bucket: str,
    failed_only_report: bool,
    priority: int,
    token: str,
) -> str:
    """S3 Batch Operations CreateJob: LambdaInvoke schema 2.0; returns the job id."""
    response = s3control.create_job(
        AccountId=account_id,
        ConfirmationRequired=False,
        Operation={
            "LambdaInvoke": {
                "FunctionArn": function_arn,
                "InvocationSchemaVersion": "2.0",
                "UserArguments": arguments.to_user_arguments(),
            }
        },
        Report={
            "Bucket": f"arn:aws:s3:::{report_bucket}",
            "Prefix": REPORT_PREFIX.rstrip("/"),
            "Format": "Report_CSV_20180820",
            "Enabled": True,
            "ReportScope": "FailedTasksOnly" if failed_only_report else "AllTasks",
        },
        ClientRequestToken=token,
        Manifest={
            "Spec": {
                "Format": "S3BatchOperations_CSV_20180820",
                "Fields": ["Bucket", "Key", "VersionId"] if with_versions else ["Bucket", "Key"],
            },
            "Location": {
                "ObjectArn": f"arn:aws:s3:::{manifest_bucket}/{manifest_key}",
                "ETag": manifest_etag,
            },
        },
        Description=f"camsort backfill {arguments.mode} {arguments.model_version or 'live model'}"[:256],
        Priority=priority,
        RoleArn=role_arn,
    )
    return response["JobId"]


@requires("s3:DescribeJob", resource="batch-jobs")
def watch_job(
    s3control: Any,
    account_id: str,
    job_id: str,
    *,
    progress: Progress | None = None,
    poll_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """DescribeJob until the job ends; ``progress(done, total)`` on every poll. Returns the Job."""
    while True:
        job = s3control.describe_job(AccountId=account_id, JobId=job_id)["Job"]
        summary = job.get("ProgressSummary", {})
        total = summary.get("TotalNumberOfTasks", 0)
        done = summary.get("NumberOfTasksSucceeded", 0) + summary.get("NumberOfTasksFailed", 0)
        if progress:
            progress(done, total)
        if job["Status"] in DONE:
            return job
        sleep(poll_s)


@dataclass(frozen=True)
class _StagedJob:
    """A job's inputs, written before either runner starts it: the manifest in the bucket."""

    bucket: str
    entries: list[ManifestEntry]
    arguments: JobArguments
    token: str
    manifest_key: str
    manifest_etag: str


def _stage_job(
    request: BackfillRequest, s3: Any, table: Any | None
) -> tuple[BackfillOutcome, _StagedJob | None]:
    """Plan the backfill and, unless it is a dry run or selects nothing, write its manifest: the
    steps Batch Operations on AWS and the local runner share. No staged job means nothing to run."""
    bucket, _ = parse_s3_uri(request.source, "source")
    listed, entries, estimate = plan_backfill(request, s3, table)
    outcome = BackfillOutcome(listed=listed, selected=len(entries), estimate=estimate)
    if request.dry_run or not entries:
        return outcome, None
    arguments = job_arguments(request, s3, bucket)
    token = _token()
    key, etag = write_manifest(s3, bucket, entries, token)
    outcome.manifest_uri = f"s3://{bucket}/{key}"
    return outcome, _StagedJob(bucket, entries, arguments, token, key, etag)


def run_backfill_on_aws(
    request: BackfillRequest,
    *,
    s3: Any,
    s3control: Any,
    table: Any | None,
    account_id: str,
    function_arn: str,
    role_arn: str,
    progress: Progress | None = None,
    poll_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
) -> BackfillOutcome:
    outcome, staged = _stage_job(request, s3, table)
    if staged is None:
        return outcome
    bucket, entries = staged.bucket, staged.entries
    outcome.job_id = create_job(
        s3control,
        account_id=account_id,
        function_arn=function_arn,
        role_arn=role_arn,
        arguments=staged.arguments,
        manifest_bucket=bucket,
        manifest_key=staged.manifest_key,
        manifest_etag=staged.manifest_etag,
        with_versions=any(e.version_id for e in entries) and all(e.version_id for e in entries),
        report_bucket=bucket,
        failed_only_report=request.failed_only_report,
        priority=request.priority,
        token=staged.token,
    )
    job = watch_job(s3control, account_id, outcome.job_id, progress=progress, poll_s=poll_s, sleep=sleep)
    outcome.status = job["Status"]
    summary = job.get("ProgressSummary", {})
    rows = _report_rows(s3, bucket, outcome.job_id)
    _fill(outcome, rows, succeeded=summary.get("NumberOfTasksSucceeded", 0))
    return outcome


def run_backfill_locally(
    request: BackfillRequest,
    *,
    s3: Any,
    table: Any | None,
    invoke: Callable[[dict[str, Any]], Any],
    concurrency: int = 4,
    progress: Progress | None = None,
    retry_pause_s: float = 0.5,
) -> BackfillOutcome:
    """The same steps against a local endpoint; the local runner stands in for Batch Operations."""
    outcome, staged = _stage_job(request, s3, table)
    if staged is None:
        return outcome
    bucket = staged.bucket
    job = LocalJob(
        manifest_bucket=bucket,
        manifest_key=staged.manifest_key,
        report_bucket=bucket,
        report_prefix=REPORT_PREFIX.rstrip("/"),
        user_arguments=staged.arguments.to_user_arguments(),
        failed_only=request.failed_only_report,
        concurrency=concurrency,
        retry_pause_s=retry_pause_s,
    )
    result = run_local_job(s3, job, invoke, progress=progress)
    outcome.job_id, outcome.status = result.job_id, result.status
    _fill(outcome, _report_rows(s3, bucket, result.job_id), succeeded=result.succeeded)
    return outcome


def _report_rows(s3: Any, bucket: str, job_id: str) -> list[TaskResult]:
    return read_report(s3, bucket, f"{REPORT_PREFIX}job-{job_id}/manifest.json")


def _fill(outcome: BackfillOutcome, rows: list[TaskResult], *, succeeded: int) -> None:
    summary = summarise(rows)
    outcome.report_rows = rows
    # A FailedTasksOnly report lists no successes: the job's own count says how many.
    outcome.succeeded = max(succeeded, summary["succeeded"])
    outcome.failed = summary["failed"]
    outcome.failed_by_reason = summary["failed_by_reason"]


@requires("s3:GetObject", resource="job-models")
def _read_model_manifest(s3: Any, uri: str) -> dict[str, Any]:
    bucket, prefix = parse_s3_uri(uri, "--model-uri")
    key = prefix.rstrip("/") + "/" + MANIFEST_FILENAME if prefix else MANIFEST_FILENAME
    try:
        return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except Exception as exc:
        raise ConfigurationError(
            f"s3://{bucket}/{key}: cannot read the model's manifest ({exc}); upload the model there or pass --model-uri"
        ) from exc


def _token() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:8]
