"""`camsort results`: one camera's results over a time range, from the results table."""

from __future__ import annotations

import click


@click.command("results")
@click.option("--camera", required=True, help="Camera id, e.g. cam-01.")
@click.option(
    "--since", default=None, help="Start of the range (ISO 8601, UTC if no zone), e.g. 2026-11-22T07:00:00Z."
)
@click.option("--until", default=None, help="End of the range (ISO 8601).")
@click.option(
    "--last", default=None, help="Start the range this long ago: 30s, 10m, 2h, 1d (instead of --since)."
)
@click.option(
    "--status", type=click.Choice(["ok", "rejected"]), default=None, help="Only results with this status."
)
@click.option(
    "--limit", type=click.IntRange(1), default=50, show_default=True, help="At most this many results."
)
@click.option(
    "--endpoint-url", default=None, help="A local endpoint (moto); default: the running demo's, else AWS."
)
@click.option(
    "--table", default=None, help="Results table; default: the running demo's (camsort demo --keep-running)."
)
@click.option("--region", default=None, help="AWS region (default: from the environment).")
@click.option(
    "--model-version",
    default=None,
    help="Results of this model version (a backfill with another model); default: the live results.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the items as JSON instead of a table.")
def results(
    camera: str,
    since: str | None,
    until: str | None,
    last: str | None,
    status: str | None,
    limit: int,
    endpoint_url: str | None,
    table: str | None,
    region: str | None,
    model_version: str | None,
    as_json: bool,
) -> None:
    """Query the results table by camera and capture time (the by_camera index)."""
    from infra.model_results import results_command

    results_command(
        camera=camera,
        since=since,
        until=until,
        last=last,
        status=status,
        limit=limit,
        endpoint_url=endpoint_url,
        table=table,
        region=region,
        as_json=as_json,
        model_version=model_version,
    )
