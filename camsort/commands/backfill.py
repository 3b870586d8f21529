"""`camsort backfill s3://bucket/prefix/`: classify (or featurize) stored frames through S3 Batch Operations;
`camsort compact`: pack a featurize job's shards into the Parquet archive."""

from __future__ import annotations

import click

from infra.deploy.topology import FUNCTION_MEMORY_MB


@click.command("backfill")
@click.argument("source")
@click.option(
    "--since",
    default=None,
    help="Only objects last modified at or after this time (ISO 8601, UTC if no zone).",
)
@click.option("--until", default=None, help="Only objects last modified at or before this time (ISO 8601).")
@click.option(
    "--only-missing",
    is_flag=True,
    help="Only objects with no result for their current version (for --model-version, if given).",
)
@click.option(
    "--mode",
    type=click.Choice(["classify", "featurize"]),
    default="classify",
    show_default=True,
    help="What the function does with each frame.",
)
@click.option(
    "--model-version",
    default=None,
    help="Run this model version instead of the live one; results go beside the live ones.",
)
@click.option(
    "--model-uri",
    default=None,
    help="Where --model-version's artifact is (default: s3://<bucket>/models/<version>/).",
)
@click.option(
    "--model",
    "model_name",
    default="default",
    show_default=True,
    help="Whose --model-version: a named model's lives under s3://<bucket>/models/<model>/<version>/.",
)
@click.option(
    "--inventory",
    default=None,
    help="Read the objects from an S3 Inventory report (s3://.../manifest.json, CSV) instead of listing.",
)
@click.option(
    "--dry-run", is_flag=True, help="Print the counts and the estimated cost; write nothing, create no job."
)
@click.option(
    "--report",
    "report_scope",
    type=click.Choice(["failed", "all"]),
    default="failed",
    show_default=True,
    help="Completion report for the failed tasks only, or for all.",
)
@click.option(
    "--priority",
    type=click.IntRange(0),
    default=10,
    show_default=True,
    help="Job priority (higher runs first).",
)
@click.option(
    "--function-arn", default=None, help="AWS: the backfill function (stack output BackfillFunctionArn)."
)
@click.option(
    "--role-arn", default=None, help="AWS: the Batch Operations role (stack output BatchOperationsRoleArn)."
)
@click.option("--account-id", default=None, help="AWS account id (default: from STS).")
@click.option(
    "--table", default=None, help="Results table, for --only-missing (locally default camsort-results-local)."
)
@click.option("--region", default=None, help="AWS region (default: from the environment).")
@click.option(
    "--endpoint-url", default=None, help="A local endpoint (moto): run the job with the local runner."
)
@click.option(
    "--function-model-uri",
    default=None,
    help="Locally: the live model the local function runs (s3://.../models/<version>/).",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1),
    default=4,
    show_default=True,
    help="Locally: invocations at once.",
)
@click.option(
    "--memory-mb",
    type=click.IntRange(128, 10240),
    default=FUNCTION_MEMORY_MB,
    show_default=True,
    help="Function memory, for the cost estimate (default: the deployed backfill function's).",
)
@click.option(
    "--per-frame-ms",
    type=float,
    default=None,
    help="Function time per frame for the estimate (default: bench/results.json, int8).",
)
@click.option(
    "--compact-function",
    default=None,
    help="AWS, --mode featurize: the compact function to invoke when the job ends (stack output "
    "CompactFunctionName); locally the compaction runs after the job anyway.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
def backfill(source: str, since: str | None, until: str | None, report_scope: str, **options) -> None:
    """Run the frames under SOURCE (s3://bucket/prefix/) through the function as one Batch Operations job."""
    from camsort.commands.results import parse_time
    from infra.ops.backfill import BackfillRequest
    from infra.ops.backfill_command import backfill_command

    request = BackfillRequest(
        source=source,
        since=parse_time(since, "--since") if since else None,
        until=parse_time(until, "--until") if until else None,
        only_missing=options.pop("only_missing"),
        mode=options.pop("mode"),
        model_version=options.pop("model_version"),
        model_uri=options.pop("model_uri"),
        model_name=options.pop("model_name"),
        inventory=options.pop("inventory"),
        dry_run=options.pop("dry_run"),
        failed_only_report=report_scope == "failed",
        priority=options.pop("priority"),
        memory_mb=options.pop("memory_mb"),
        per_frame_ms=options.pop("per_frame_ms"),
    )
    backfill_command(request, **options)


@click.command("compact")
@click.option(
    "--bucket", default="camsort-frames-local", show_default=True, help="The bucket holding features/."
)
@click.option(
    "--backbone", "backbone_sha256", default=None, help="Only this backbone sha256 (default: every one)."
)
@click.option(
    "--endpoint-url",
    default=None,
    help="A local moto server: run the compaction here, under its derived role.",
)
@click.option("--region", default=None, help="AWS region.")
@click.option(
    "--function",
    "function_name",
    default=None,
    help="On AWS: the compact function (camsort-<stage>-compact).",
)
def compact(bucket, backbone_sha256, endpoint_url, region, function_name) -> None:
    """Feature shards -> s3://BUCKET/archive/features/<backbone>/camera=.../day=.../*.parquet (incremental)."""
    import json

    from infra.ops.archive_jobs import run_compaction

    report = run_compaction(
        bucket, backbone_sha256, endpoint_url=endpoint_url, region=region, function_name=function_name
    )
    click.echo(json.dumps(report, indent=2, sort_keys=True))
