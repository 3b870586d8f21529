"""`camsort cameras` and `camsort events`: camera state and state changes, from the state table."""

from __future__ import annotations

import click

from camsort.commands.results import _source_options


@click.command("cameras")
@_source_options
def cameras(endpoint_url, table, state_table, region, as_json) -> None:
    """Every camera's current state, since when, and its last frame."""
    from infra.ops.camera_views import cameras_command

    cameras_command(
        endpoint_url=endpoint_url, table=table, state_table=state_table, region=region, as_json=as_json
    )


@click.command("events")
@click.option("--camera", required=True, help="Camera id, e.g. cam-03.")
@click.option("--since", default=None, help="Start of the range (ISO 8601, UTC if no zone).")
@click.option("--until", default=None, help="End of the range (ISO 8601).")
@click.option(
    "--last", default=None, help="Start the range this long ago: 30s, 10m, 1h, 1d (instead of --since)."
)
@_source_options
def events(camera, since, until, last, endpoint_url, table, state_table, region, as_json) -> None:
    """One camera's state changes (events) overlapping a time range."""
    from datetime import UTC, datetime

    from camsort.commands.results import time_range
    from infra.ops.camera_views import events_command

    start, end = time_range(since, until, last, datetime.now(UTC))
    events_command(
        camera=camera,
        since=start,
        until=end,
        endpoint_url=endpoint_url,
        table=table,
        state_table=state_table,
        region=region,
        as_json=as_json,
    )
