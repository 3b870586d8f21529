"""`camsort audit`: every object version under the prefix has its one result or DLQ entry."""

from __future__ import annotations

import click


@click.command("audit")
@click.option("--since", default=None, help="Versions last modified from (ISO 8601, UTC if no zone).")
@click.option("--until", default=None, help="Versions last modified until (ISO 8601); default: now.")
@click.option("--last", default=None, help="Start this long before --until: 30m, 6h, 1d (default 1d).")
@click.option("--prefix", default=None, help="Key prefix to audit; default: the stack's frames prefix.")
@click.option(
    "--grace",
    default="15m",
    show_default=True,
    help="A version younger than this without a result is pending, not unaccounted.",
)
@click.option(
    "--listing",
    type=click.Choice(["full", "time-named"]),
    default="full",
    show_default=True,
    help="full: every version under the prefix; time-named: per camera from --since "
    "(frame names are capture timestamps, the default layout).",
)
@click.option(
    "--stage", default=None, help="Stack names: camsort-frames-<stage>, ...; default: the running demo's."
)
@click.option(
    "--endpoint-url", default=None, help="A local endpoint (moto); default: the running demo's, else AWS."
)
@click.option("--region", default=None, help="AWS region (default: from the environment).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--redrive", "do_redrive", is_flag=True, help="Send the unaccounted back into the queue.")
def audit(
    since: str | None,
    until: str | None,
    last: str | None,
    prefix: str | None,
    grace: str,
    listing: str,
    stage: str | None,
    endpoint_url: str | None,
    region: str | None,
    as_json: bool,
    do_redrive: bool,
) -> None:
    """Reconcile S3 versions against the results table and the DLQ; exit 1 on anything unaccounted."""
    from camsort.commands.results import parse_duration, parse_time
    from infra.ops.audit_report import audit_command

    code = audit_command(
        stage=stage,
        endpoint_url=endpoint_url,
        region=region,
        since=parse_time(since, "--since") if since else None,
        until=parse_time(until, "--until") if until else None,
        last=parse_duration(last) if last else None,
        prefix=prefix,
        grace=parse_duration(grace),
        listing=listing,
        as_json=as_json,
        do_redrive=do_redrive,
    )
    raise SystemExit(code)
