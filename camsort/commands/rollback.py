"""`camsort rollback`: the stage's previous live model becomes live again."""

from __future__ import annotations

import click

from camsort.commands.promote import apply, open_stage, stage_options


@click.command("rollback")
@stage_options
def rollback(
    stage, deploy_dir, no_deploy, reason, model_name, endpoint_url, table, review_table, region
) -> None:
    """Roll the stage's model (--model) back to the version live before its last promotion (recorded)."""
    from infra.ops.promote import now_utc
    from infra.ops.promote import rollback as rollback_stage

    opened = open_stage(stage, deploy_dir, endpoint_url, table, review_table, region)
    apply(opened, rollback_stage(opened, reason=reason, now=now_utc(), model_name=model_name), no_deploy)
