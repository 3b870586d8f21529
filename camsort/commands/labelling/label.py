"""`camsort label SET` / `camsort label --review`: the labelling page on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import click

from camsort.commands.review import camera_option, target_options


@click.command("label")
@click.argument("set_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--review", is_flag=True, help="Label the review queue: SET (default ./review-set) is built from it."
)
@click.option("--port", default=8765, show_default=True, help="Port on 127.0.0.1 (0: any free port).")
@click.option(
    "--s3-endpoint-url",
    default=None,
    help="S3 endpoint for a set of s3:// frames (e.g. a local moto server).",
)
@target_options
@camera_option
def label(
    set_dir: Path | None,
    review: bool,
    port: int,
    endpoint_url,
    table,
    review_table,
    region,
    camera,
) -> None:
    """Label SET (written by `camsort sample`) in the browser; every action lands in SET/labels.jsonl at once."""
    from rich.console import Console

    from infra.labelling.review_set import label_command
    from infra.ops.review import resolve_aws_target

    if not review and set_dir is None:
        raise click.UsageError("give the set directory (camsort sample --out SET), or --review")
    target = resolve_aws_target(endpoint_url, table, review_table, region) if review else None
    s3_client = None
    if not review:
        import boto3

        s3_client = boto3.client("s3", endpoint_url=endpoint_url)  # a set of s3:// frames on moto
    label_command(set_dir, review=target, camera=camera, port=port, s3_client=s3_client, console=Console())
