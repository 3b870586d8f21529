"""`camsort compact`: pack feature shards into the Parquet archive (locally, or the deployed function)."""

from __future__ import annotations

import click


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

    from infra.archive_jobs import run_compaction

    report = run_compaction(
        bucket, backbone_sha256, endpoint_url=endpoint_url, region=region, function_name=function_name
    )
    click.echo(json.dumps(report, indent=2, sort_keys=True))
