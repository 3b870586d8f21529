"""`camsort drift`: per camera and per day, the label mix against the training prior, the unknown and
unfamiliar rates and the mean confidence, from the results table; a table and an HTML report."""

from __future__ import annotations

from pathlib import Path

import click

from camsort.commands.cameras import _source_options


@click.command("drift")
@click.option(
    "--camera", "cameras", multiple=True, help="Only these cameras (repeatable); default: every camera."
)
@click.option("--since", default=None, help="Start of the range (ISO 8601, UTC if no zone).")
@click.option("--until", default=None, help="End of the range (ISO 8601).")
@click.option(
    "--last", default=None, help="Start the range this long ago: 1h, 1d, 7d (instead of --since); default 7d."
)
@click.option(
    "--model", "model_uri", default=None,
    help="The model whose training prior the mix is compared with (a directory or s3://.../); default: the "
    "manifest under the stage bucket's models/ that the results name.",
)  # fmt: skip
@click.option(
    "--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Also write an HTML report (plots per camera) here.",
)  # fmt: skip
@_source_options
def drift(
    cameras, since, until, last, model_uri, html_path, endpoint_url, table, state_table, region, as_json
):
    """Per camera and day: label mix vs the training prior (Jensen-Shannon, PSI), unknown and unfamiliar rates."""
    from datetime import UTC, datetime

    from camsort.commands.results import time_range
    from infra.ops.drift import drift_command

    start, end = time_range(since, until, last or (None if since else "7d"), datetime.now(UTC))
    drift_command(
        cameras=list(cameras), since=start, until=end, endpoint_url=endpoint_url, table=table,
        state_table=state_table, region=region, model_uri=model_uri, html_path=html_path, as_json=as_json,
    )  # fmt: skip
