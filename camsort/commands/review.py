"""`camsort review export DIR` / `camsort review stats`: the frames the live model doubted."""

from __future__ import annotations

from pathlib import Path

import click

_target_options = [
    click.option(
        "--endpoint-url", default=None, help="A local endpoint (moto); default: the running demo's, else AWS."
    ),
    click.option("--table", default=None, help="Results table; default: the running demo's."),
    click.option(
        "--review-table", default=None, help="Review table; default: camsort-review-<stage> beside --table."
    ),
    click.option("--region", default=None, help="AWS region (default: from the environment)."),
]
camera_option = click.option("--camera", default=None, help="Only this camera's frames.")


def target_options(command):
    for option in reversed(_target_options):
        command = option(command)
    return command


@click.group("review")
def review() -> None:
    """Frames queued for a person: left `unknown` or decided close to a threshold."""


@review.command("export")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@target_options
@camera_option
@click.option("--dequeue", is_flag=True, help="Take the exported frames off the queue.")
def export(out_dir: Path, endpoint_url, table, review_table, region, camera, dequeue: bool) -> None:
    """Download queued frames into OUT_DIR/_unlabeled/<camera>/ with a CSV of the model's guesses."""
    from infra.ops.review import resolve_aws_target, review_export_command

    target = resolve_aws_target(endpoint_url, table, review_table, region)
    review_export_command(out_dir, target, camera=camera, dequeue=dequeue)


@review.command("stats")
@target_options
@camera_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def stats(endpoint_url, table, review_table, region, camera, as_json: bool) -> None:
    """The review queue per camera, live label and reason."""
    from infra.ops.review import resolve_aws_target, review_stats_command

    target = resolve_aws_target(endpoint_url, table, review_table, region)
    review_stats_command(target, camera=camera, as_json=as_json)
