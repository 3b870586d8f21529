"""`camsort candidate MODEL_DIR`: run a model in shadow beside the stage's live model."""

from __future__ import annotations

from pathlib import Path

import click

from camsort.commands.promote import open_stage, stage_options


@click.command("candidate")
@click.argument("model_dir", type=click.Path(file_okay=False, exists=True, path_type=Path))
@stage_options
@click.option(
    "--version", default=None, help="models/<version>/ to upload to (default: the manifest's model_version)."
)
@click.option(
    "--sample-rate", default=0.1, show_default=True, type=click.FloatRange(0, 1), help="Invocations scored."
)
@click.option(
    "--live-uri",
    default=None,
    help="A stage without a deploy file yet, or a named model it does not pin yet: the model it runs now (s3://...).",
)
def candidate(
    model_dir, stage, deploy_dir, no_deploy, reason, model_name, endpoint_url, table, review_table, region,
    version, sample_rate, live_uri,
) -> None:  # fmt: skip
    """Upload MODEL_DIR beside the live model and pin it (sha256) as the stage's shadow candidate."""
    from rich.console import Console

    from infra.ops.promote import now_utc, serverless_deploy, set_candidate

    opened = open_stage(stage, deploy_dir, endpoint_url, table, review_table, region)
    config = set_candidate(
        opened, model_dir, version=version, sample_rate=sample_rate, live_uri=live_uri, now=now_utc(),
        model_name=model_name,
    )  # fmt: skip
    console = Console()
    slot = config.slot(model_name)
    assert slot is not None and slot.candidate is not None
    console.print(
        f"Candidate {slot.candidate.version} of model {model_name} ({slot.candidate.uri}, sha256 "
        f"{slot.candidate.sha256[:12]}) scores {sample_rate:.0%} of invocations on {opened.name}; written to {opened.path}."
    )
    if opened.local:
        console.print("Local stage: workers started from now on load the candidate.")
    else:
        command = serverless_deploy(opened, run=not no_deploy)
        if no_deploy:
            console.print(f"Apply it with: {' '.join(command)}")
