"""`camsort compare`: agreement of the live model and the shadow candidate on the same frames."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import click

from camsort.commands.results import parse_duration, parse_time
from camsort.commands.review import camera_option, target_options


def parse_since(text: str, now: datetime) -> datetime:
    """``--since``: an ISO 8601 time, or a duration back from now (30m, 2h, 7d)."""
    if text.strip()[-1:] in ("s", "m", "h", "d") and text.strip()[:1].isdigit() and "T" not in text:
        return now - parse_duration(text)
    return parse_time(text, "--since")


@click.command("compare")
@click.option(
    "--since", required=True, help="Frames captured since: ISO 8601 (UTC if no zone) or 30m / 2h / 7d."
)
@target_options
@camera_option
@click.option(
    "--candidate", "candidate_version", default=None, help="Candidate model version (default: the latest)."
)
@click.option(
    "--worst", default=20, show_default=True, type=click.IntRange(0), help="Disagreeing frames to list."
)
@click.option(
    "--model",
    "model_name",
    default="default",
    show_default=True,
    help="The named model whose live and candidate answers to compare (a region model's: its regions' items).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@click.option(
    "--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), help="Also write an HTML page."
)
@click.option(
    "--thumbnails",
    type=click.Choice(["download", "presigned"]),
    default="download",
    show_default=True,
    help="HTML thumbnails: downloaded and inlined (a self-contained page) or presigned URLs (valid 1 h).",
)
def compare(
    since: str,
    endpoint_url,
    table,
    review_table,
    region,
    camera,
    candidate_version,
    worst: int,
    model_name: str,
    as_json: bool,
    html_path: Path | None,
    thumbnails: str,
) -> None:
    """Live x candidate: agreement overall and per camera, confusion matrix, worst disagreements."""
    from datetime import UTC

    from infra.ops.compare import compare_command
    from infra.ops.review import resolve_aws_target

    target = resolve_aws_target(endpoint_url, table, review_table, region)
    compare_command(
        target,
        since=parse_since(since, datetime.now(UTC)),
        camera=camera,
        candidate_version=candidate_version,
        worst=worst,
        as_json=as_json,
        html_path=html_path,
        thumbnails=thumbnails,
        model_name=model_name,
    )
