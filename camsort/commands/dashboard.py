"""`camsort dashboard`: every camera's state, events and latest frames on one HTML page."""

from __future__ import annotations

from pathlib import Path

import click

from camsort.commands.cameras import _source_options


@click.command("dashboard")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("camsort-dashboard.html"),
    show_default=True, help="Where to write the page.",
)  # fmt: skip
@click.option("--serve", is_flag=True, help="Serve the page on 127.0.0.1 instead (rebuilt on every request).")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port for --serve."
)
@click.option(
    "--frames", type=click.IntRange(1, 50), default=6, show_default=True, help="Thumbnails per camera."
)
@_source_options
def dashboard(out, serve, port, frames, endpoint_url, table, state_table, region, as_json) -> None:
    """Write (or --serve) a page: each camera's state, its events, its latest and rejected frames."""
    from infra.ops.dashboard import dashboard_command

    if as_json:
        raise click.UsageError("--json is for camsort cameras / events; the dashboard is a page")
    dashboard_command(
        endpoint_url=endpoint_url, table=table, state_table=state_table, region=region,
        out=out, serve=serve, port=port, frames=frames,
    )  # fmt: skip
