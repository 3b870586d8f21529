"""`camsort results`: one camera's results over a time range, from the results table; `camsort stats`:
frames per camera / hour / label from the results archive (DuckDB or Athena); `camsort drift`: per
camera and day, the label mix against the training prior, the unknown and unfamiliar rates and the
mean confidence, from the results table."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
@click.option(
    "--model",
    "model_name",
    default="default",
    show_default=True,
    help="Whose --model-version: a named model's (e.g. bay) are the answers of its backfill for its regions.",
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
    model_name: str,
    as_json: bool,
) -> None:
    """Query the results table by camera and capture time (the by_camera index)."""
    from infra.ops.results_query import ResultsQuery, resolve_target, show_results

    start, end = time_range(since, until, last, datetime.now(UTC))
    query = ResultsQuery(
        camera=camera,
        since=start,
        until=end,
        status=status,
        limit=limit,
        model_version=model_version,
        model_name=model_name,
    )
    show_results(query, resolve_target(endpoint_url, table, region), as_json=as_json)


@click.command("stats")
@click.option(
    "--by",
    default="camera,hour,label",
    show_default=True,
    help="Group by: camera, day, hour, label, status, model.",
)
@click.option("--since", required=True, help="Captured at or after (ISO 8601; UTC without a zone).")
@click.option("--until", required=True, help="Captured before (ISO 8601; UTC without a zone).")
@click.option(
    "--engine",
    type=click.Choice(["duckdb", "athena"]),
    default=None,
    help="duckdb reads the archive's files (default with --endpoint-url); athena queries the Glue table.",
)
@click.option(
    "--bucket",
    default="camsort-frames-local",
    show_default=True,
    help="The frames bucket (archive/results/).",
)
@click.option("--endpoint-url", default=None, help="S3 endpoint (a local moto server).")
@click.option("--region", default=None, help="AWS region.")
@click.option("--database", default=None, help="Athena: the Glue database (camsort_<stage>).")
@click.option(
    "--output-location",
    default=None,
    help="Athena: s3:// for query results [s3://<bucket>/archive/athena-results/].",
)
@click.option(
    "--table",
    "results_table",
    default=None,
    help="Locally: export this results table's stream to the archive first (camsort-results-local for the demo).",
)
@click.option("--plot", "plot_path", default=None, help="Also write a chart (PNG) here.")
@click.option("--show-sql", is_flag=True, help="Print the SQL.")
def stats(
    by,
    since,
    until,
    engine,
    bucket,
    endpoint_url,
    region,
    database,
    output_location,
    results_table,
    plot_path,
    show_sql,
) -> None:
    """The same SQL on either engine; prints a table (or writes a chart with --plot)."""
    from rich.console import Console

    from camsort.commands.results import parse_time
    from infra.ops.stats import plot_stats, print_stats, stats_command

    table = stats_command(
        by,
        parse_time(since, "--since"),
        parse_time(until, "--until"),
        engine=engine,
        bucket=bucket,
        endpoint_url=endpoint_url,
        region=region,
        database=database,
        output_location=output_location,
        table=results_table,
    )
    console = Console()
    if show_sql:
        console.print(table.sql)
    print_stats(table, console, f"frames by {by}, {since} to {until}")
    if plot_path:
        console.print(f"chart: {plot_stats(table, plot_path)}")


# The options of the commands that read a stage's tables (results, state): cameras, events,
# dashboard, drift.
_SOURCE_OPTIONS = [
    click.option(
        "--endpoint-url", default=None, help="A local endpoint (moto); default: the running demo's, else AWS."
    ),
    click.option("--table", default=None, help="Results table of the stage; default: the running demo's."),
    click.option(
        "--state-table",
        default=None,
        help="State table; default: the one named like the results table (camsort-state-<stage>).",
    ),
    click.option("--region", default=None, help="AWS region (default: from the environment)."),
    click.option("--json", "as_json", is_flag=True, help="Print the items as JSON instead of a table."),
]


def _source_options(command):
    for option in reversed(_SOURCE_OPTIONS):
        command = option(command)
    return command


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
    from infra.ops.drift import drift_command

    start, end = time_range(since, until, last or (None if since else "7d"), datetime.now(UTC))
    drift_command(
        cameras=list(cameras), since=start, until=end, endpoint_url=endpoint_url, table=table,
        state_table=state_table, region=region, model_uri=model_uri, html_path=html_path, as_json=as_json,
    )  # fmt: skip
