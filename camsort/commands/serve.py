"""`camsort serve --model DIR`: the function's Function URL on 127.0.0.1, for curl and scripts."""

from __future__ import annotations

import click


@click.command("serve")
@click.option(
    "--model", "model_uri", required=True, help="Model directory (or s3://bucket/prefix/) to serve."
)
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port on 127.0.0.1 (0: any free port).",
)
@click.option(
    "--endpoint-url",
    default=None,
    help='S3/DynamoDB endpoint for {"s3": ...} requests (e.g. the demo\'s moto server).',
)
@click.option(
    "--table", default=None, help="Results table for requests with write=true (default: no writes)."
)
@click.option("--region", default=None, help="AWS region for the clients (default: us-east-1).")
def serve(model_uri: str, port: int, endpoint_url: str | None, table: str | None, region: str | None) -> None:
    """Answer POSTed images (or {"s3": "s3://bucket/key"}) through the Lambda handler, as its Function URL does."""
    from rich.console import Console

    from infra.ops.serve import serve as run

    run(model_uri, port=port, endpoint_url=endpoint_url, table=table, region=region, console=Console())
