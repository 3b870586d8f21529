"""`camsort backfill`: options -> clients -> infra.ops.backfill -> tables and a progress bar."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from functions import env
from functions.errors import ConfigurationError
from infra.ops.backfill import BackfillOutcome, BackfillRequest, run_backfill_locally, run_backfill_on_aws


def backfill_command(
    request: BackfillRequest,
    *,
    endpoint_url: str | None,
    region: str | None,
    table: str | None,
    function_arn: str | None,
    role_arn: str | None,
    account_id: str | None,
    function_model_uri: str | None,
    concurrency: int,
    as_json: bool,
    console: Console | None = None,
    compact_function: str | None = None,
) -> BackfillOutcome:
    console = console or Console()
    with _progress(console, enabled=not as_json and not request.dry_run) as progress:
        if endpoint_url:
            outcome = _local(request, endpoint_url, region, table, function_model_uri, concurrency, progress)
        else:
            outcome = _aws(request, region, table, function_arn, role_arn, account_id, progress)
    # The compaction runs before the outcome is shown, so --json carries its report too.
    if request.mode == "featurize" and outcome.succeeded and (endpoint_url or compact_function):
        _compact_after(request, outcome, endpoint_url, region, compact_function)
    show(outcome, request, console, as_json=as_json)
    if outcome.compaction is not None and not as_json:
        packed = sum(b["packed"] for b in outcome.compaction.get("backbones", {}).values())
        bucket = request.source.removeprefix("s3://").partition("/")[0]
        console.print(f"compaction: {packed} new feature rows packed into s3://{bucket}/archive/features/")
    return outcome


def _compact_after(request, outcome, endpoint_url, region, compact_function) -> None:
    """A featurize job's shards into the Parquet archive (incremental: only what is new)."""
    from infra.local.batch_runner import routed_output
    from infra.ops.archive_jobs import run_compaction

    bucket = request.source.removeprefix("s3://").partition("/")[0]
    # Locally the compaction's code runs here: its logs join the job's function log, off stdout.
    with (
        open(outcome.function_log, "a") if outcome.function_log else nullcontext() as log,
        routed_output(log),
    ):
        outcome.compaction = run_compaction(
            bucket, None, endpoint_url=endpoint_url, region=region, function_name=compact_function
        )


def _local(
    request, endpoint_url, region, table, function_model_uri, concurrency, progress
) -> BackfillOutcome:
    from functions.stores.results import ResultsTable
    from infra.deploy.topology import StackNames
    from infra.local.batch_runner import local_function
    from infra.local.function_env import function_environment
    from infra.local.stack import DEFAULT_REGION, LocalStack, local_client

    region = region or DEFAULT_REGION
    names = StackNames()
    table = table or names.table
    s3 = local_client("s3", endpoint_url, region)
    results = ResultsTable(table, local_client("dynamodb", endpoint_url, region))
    if request.dry_run:
        return run_backfill_locally(request, s3=s3, table=results, invoke=_never)
    if not function_model_uri:
        raise ConfigurationError(
            "--endpoint-url runs the function locally: give --function-model-uri, the live model it is "
            "deployed with (e.g. s3://camsort-frames-local/models/<version>/)"
        )
    # Only the endpoint, region and names are read from it: the queues play no part in a backfill.
    # The function's local role is scoped to the frames bucket and prefix, as deployed.
    # (The frames prefix is the deployment's, not the backfill's sub-prefix: the key pattern
    # reads the camera after it.)
    bucket = request.source.removeprefix("s3://").partition("/")[0]
    stack = LocalStack(
        endpoint_url,
        region,
        StackNames(bucket=bucket, table=table, frames_prefix=names.frames_prefix),
        "",
        "",
        "",
        "",
        900,
        5400,
    )
    # The model cache of this run only (the default /tmp/camsort-model is Lambda's, one per container):
    # a 100 MB model per run, so it is removed after the run. The function's log is kept (its path is
    # printed and returned) in a file of its own.
    handle, log_path = tempfile.mkstemp(prefix="camsort-backfill-", suffix=".log")
    with (
        tempfile.TemporaryDirectory(prefix="camsort-backfill-model-") as cache,
        os.fdopen(handle, "a") as log,
    ):
        environment = function_environment(stack, function_model_uri, extra={env.MODEL_CACHE_DIR: cache})
        with local_function(environment, function_output=log) as invoke:
            outcome = run_backfill_locally(
                request, s3=s3, table=results, invoke=invoke, concurrency=concurrency, progress=progress
            )
    outcome.function_log = str(log_path)
    return outcome


def _aws(request, region, table, function_arn, role_arn, account_id, progress) -> BackfillOutcome:
    import boto3

    from functions.stores.results import ResultsTable

    session = boto3.session.Session(region_name=region)
    s3 = session.client("s3")
    results = ResultsTable(table, session.client("dynamodb")) if table else None
    if not request.dry_run and not (function_arn and role_arn):
        raise ConfigurationError(
            "creating the job needs --function-arn and --role-arn (the stack's outputs BackfillFunctionArn "
            "and BatchOperationsRoleArn: `npx serverless info --verbose`)"
        )
    if not request.dry_run:
        account_id = account_id or session.client("sts").get_caller_identity()["Account"]
    return run_backfill_on_aws(
        request,
        s3=s3,
        s3control=session.client("s3control"),
        table=results,
        account_id=account_id or "",
        function_arn=function_arn or "",
        role_arn=role_arn or "",
        progress=progress,
    )


def _never(event: dict[str, Any]) -> Any:
    raise AssertionError("a dry run invokes nothing")


@contextmanager
def _progress(console: Console, *, enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    columns = (TextColumn("job"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("job", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total or None)


def show(outcome: BackfillOutcome, request: BackfillRequest, console: Console, *, as_json: bool) -> None:
    if as_json:
        data = asdict(outcome) | {"estimate_total_usd": round(outcome.estimate.total_usd, 6)}
        data.pop("report_rows")
        console.file.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        return
    plan = Table(title=f"backfill {request.source} ({request.mode}, {request.model_version or 'live model'})")
    plan.add_column("")
    plan.add_column("", justify="right")
    plan.add_row("objects listed", str(outcome.listed))
    plan.add_row("in the job" + (" (no result yet)" if request.only_missing else ""), str(outcome.selected))
    estimate = outcome.estimate
    plan.add_row("Batch Operations ($0.25/job + $1.00/M objects)", f"${estimate.batch_usd:.4f}")
    plan.add_row("Lambda requests ($0.20/M)", f"${estimate.lambda_requests_usd:.4f}")
    plan.add_row(
        f"Lambda compute ({estimate.per_frame_s * 1000:.0f} ms/frame x {estimate.memory_mb} MB, arm64)",
        f"${estimate.lambda_compute_usd:.4f}",
    )
    plan.add_row("estimated total", f"${estimate.total_usd:.4f}")
    console.print(plan)
    if request.dry_run or outcome.job_id is None:
        console.print("dry run: nothing written" if request.dry_run else "nothing to do")
        return
    done = Table(title=f"job {outcome.job_id}: {outcome.status}")
    done.add_column("tasks")
    done.add_column("count", justify="right")
    done.add_row("succeeded", str(outcome.succeeded))
    done.add_row("failed", str(outcome.failed))
    for reason, count in outcome.failed_by_reason.items():
        done.add_row(f"  {reason}", str(count))
    console.print(done)
    console.print(f"manifest: {outcome.manifest_uri}")
    if outcome.function_log:
        console.print(f"function log: {outcome.function_log}")
