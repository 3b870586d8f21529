"""`camsort promote`: make the shadow candidate the stage's live model, if the gates pass."""

from __future__ import annotations

from pathlib import Path

import click

from camsort.commands.review import target_options

_stage_options = [
    click.option(
        "--stage", default=None, help="The stage (deploy/<stage>.json); default: the running demo's."
    ),
    click.option(
        "--deploy-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Where <stage>.json lives; default: the demo's state dir locally, the project's deploy/ on AWS.",
    ),
    click.option(
        "--no-deploy", is_flag=True, help="AWS: write the deploy file and print the serverless command only."
    ),
    click.option("--reason", default=None, help="Why: kept in the record."),
    click.option(
        "--model",
        "model_name",
        default="default",
        show_default=True,
        help="The named model (default: the whole-frame model; e.g. bay, as the cameras' regions name it).",
    ),
]


def stage_options(command):
    command = target_options(command)
    for option in reversed(_stage_options):
        command = option(command)
    return command


def open_stage(stage: str, deploy_dir, endpoint_url, table, review_table, region):
    from infra.ops.promote import default_stage
    from infra.ops.review import resolve_aws_target

    return default_stage(
        stage, resolve_aws_target(endpoint_url, table, review_table, region, stage), deploy_dir
    )


def _of_model(entry: dict) -> str:
    return "" if entry["model"] == "default" else f" of model {entry['model']}"


def apply(stage, entry: dict, no_deploy: bool) -> None:
    """Print the record and make the change take effect where the stage runs."""
    from rich.console import Console

    from infra.ops.promote import serverless_deploy

    console = Console()
    console.print(
        f"[bold]{entry['action']}[/]{_of_model(entry)} on {entry['stage']}: {entry['from']['version']} -> {entry['to']['version']} "
        f"(sha256 {entry['to']['sha256'][:12]}), by {entry['who']['iam']} / {entry['who']['user']}"
        + (" [bold red]FORCED past failing gates[/]" if entry.get("forced") else "")
    )
    for gate in entry.get("gates", []):
        console.print(f"  gate {gate['name']}: {'pass' if gate['passed'] else 'FAIL'}: {gate['detail']}")
    console.print(
        f"Recorded in {stage.deploy_dir / 'promotions.jsonl'}"
        + (f" and {entry['record_uri']}" if entry.get("record_uri") else "")
    )
    if stage.local:
        console.print(
            f"Local stage: {stage.path} updated; workers started from now on load {entry['to']['uri']}."
        )
    else:
        command = serverless_deploy(stage, run=not no_deploy)
        if no_deploy:
            console.print(f"Deploy file {stage.path} written; apply it with: {' '.join(command)}")


@click.command("promote")
@stage_options
@click.option(
    "--gate",
    type=click.Choice(["agreement", "cv", "all"]),
    default="agreement",
    show_default=True,
    help="agreement: live x candidate on shadow-scored frames; cv: the manifests' cross-validation metric.",
)
@click.option("--min-agreement", default=0.9, show_default=True, type=click.FloatRange(0, 1))
@click.option("--min-frames", default=500, show_default=True, type=click.IntRange(0))
@click.option(
    "--cv-metric", default="balanced_accuracy", show_default=True, help="cv_summary.mean key to compare."
)
@click.option("--force", is_flag=True, help="Promote even when a gate fails (recorded as forced).")
def promote(
    stage, deploy_dir, no_deploy, reason, model_name, endpoint_url, table, review_table, region,
    gate, min_agreement, min_frames, cv_metric, force,
) -> None:  # fmt: skip
    """Make the stage's shadow candidate live; the current live model is kept for `camsort rollback`."""
    from infra.ops.promote import Gates, now_utc
    from infra.ops.promote import promote as promote_stage

    opened = open_stage(stage, deploy_dir, endpoint_url, table, review_table, region)
    gates = Gates(kind=gate, min_agreement=min_agreement, min_frames=min_frames, cv_metric=cv_metric)
    entry = promote_stage(opened, gates, force=force, reason=reason, now=now_utc(), model_name=model_name)
    apply(opened, entry, no_deploy)
