"""`camsort results`: one camera's results over a time range, from the results table."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import click

from functions.errors import ConfigurationError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """``30s`` | ``10m`` | ``2h`` | ``1d``."""
    match = _DURATION.match(text)
    if not match:
        raise ConfigurationError(f"--last {text!r}: write a duration like 30s, 10m, 2h or 1d")
    value, unit = match.groups()
    return timedelta(**{_UNITS[unit]: float(value)})


def parse_time(text: str, option: str) -> datetime:
    """ISO 8601; a time without zone is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(
            f"{option} {text!r}: write an ISO 8601 time like 2026-11-22T07:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def time_range(
    since: str | None, until: str | None, last: str | None, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """--since/--last and --until -> the (start, end) of the query; either may be open."""
    if last and since:
        raise ConfigurationError("--last and --since both set the start of the range; give one of them")
    start = now - parse_duration(last) if last else (parse_time(since, "--since") if since else None)
    end = parse_time(until, "--until") if until else None
    if start and end and start > end:
        from infra.ops.results_query import iso_utc

        raise ConfigurationError(f"the range starts ({iso_utc(start)}) after it ends ({iso_utc(end)})")
    return start, end


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
    from infra.ops.results_query import ResultsQuery, resolve_target, show_results

    start, end = time_range(since, until, last, datetime.now(UTC))
    query = ResultsQuery(
        camera=camera, since=start, until=end, status=status, limit=limit, model_version=model_version
    )
    show_results(query, resolve_target(endpoint_url, table, region), as_json=as_json)
