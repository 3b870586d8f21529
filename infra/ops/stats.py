"""`camsort stats`: one SQL query over the results archive, on DuckDB here or Athena on AWS.

The archive is Parquet under ``s3://<bucket>/archive/results/day=<YYYY-MM-DD>/``
(functions/archive/results_export.py). :func:`stats_sql` writes one query, in the SQL both engines
speak (Trino's for Athena, DuckDB's: ``date_trunc``, ``row_number() OVER``, ``TIMESTAMP '...'``
literals); only the table's name differs:

* **DuckDB** (local): the files are opened as a pyarrow dataset over S3 (the moto server's
  endpoint) and registered as ``results``; DuckDB scans it with the projection and the
  filters pushed down (no DuckDB extension download needed: there is no internet here).
* **Athena** (AWS): ``StartQueryExecution`` on the Glue table serverless.yml declares
  (``camsort_<stage>.results``, partition projection on ``day``), results to an S3 output
  location, ``GetQueryExecution`` until it ends, ``GetQueryResults`` pages.

A result item written more than once (a newer answer, shadow scores added) has one row per
write; the query counts each (object_id, object_version) once, its latest row.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.archive.results_export import ARCHIVE_RESULTS_PREFIX
from functions.errors import ConfigurationError
from functions.iam import requires

# --by name -> SQL expression (the only text from the command line that reaches the SQL).
GROUPS = {
    "camera": "camera_id",
    "day": "date_trunc('day', captured_at)",
    "hour": "date_trunc('hour', captured_at)",
    "label": "coalesce(label, status)",
    "status": "status",
    "model": "model_version",
}
DONE = ("SUCCEEDED", "FAILED", "CANCELLED")


@dataclass
class StatsTable:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    sql: str
    engine: str


def parse_by(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in GROUPS]
    if not names or unknown:
        raise ConfigurationError(f"--by {text!r}: group by a comma-separated list of {', '.join(GROUPS)}")
    return names


def stats_sql(table: str, by: list[str], since: datetime, until: datetime) -> str:
    """Frames per ``by`` group captured in [since, until), each result counted once."""
    if since >= until:
        raise ConfigurationError(
            f"--since {since:%Y-%m-%dT%H:%M:%SZ} is not before --until {until:%Y-%m-%dT%H:%M:%SZ}"
        )
    groups = [f"{GROUPS[name]} AS {name}" for name in by]
    positions = ", ".join(str(i + 1) for i in range(len(by)))
    last_day = (until - timedelta(milliseconds=1)).strftime("%Y-%m-%d")
    return (
        "WITH latest AS (\n"
        "  SELECT *, row_number() OVER (PARTITION BY object_id, object_version ORDER BY sequence DESC) AS nth\n"
        f"  FROM {table}\n"
        f"  WHERE day BETWEEN '{since:%Y-%m-%d}' AND '{last_day}'\n"
        f"    AND captured_at >= TIMESTAMP '{_literal(since)}' AND captured_at < TIMESTAMP '{_literal(until)}'\n"
        ")\n"
        f"SELECT {', '.join(groups)}, count(*) AS frames\n"
        "FROM latest WHERE nth = 1\n"
        f"GROUP BY {positions}\n"
        f"ORDER BY {positions}"
    )


def run_duckdb(sql: str, *, s3_client: Any, bucket: str, filesystem: Any = None) -> StatsTable:
    """The query on DuckDB, the archive read through pyarrow from S3 (or ``filesystem``)."""
    import duckdb
    import pyarrow as pa
    import pyarrow.dataset as ds

    from functions.archive.results_export import SCHEMA
    from training.features.parquet_features import arrow_s3

    filesystem = filesystem or arrow_s3(s3_client)
    root = f"{bucket}/{ARCHIVE_RESULTS_PREFIX.rstrip('/')}"
    partitioning = ds.partitioning(pa.schema([("day", pa.string())]), flavor="hive")
    try:
        dataset = ds.dataset(
            root, filesystem=filesystem, format="parquet", partitioning=partitioning, schema=_with_day(SCHEMA)
        )
    except (OSError, ValueError) as exc:
        raise ConfigurationError(
            f"s3://{root}/: no results archive there ({exc}); results reach it through the exportResults "
            "function (locally: give --table to export the results table's stream first)"
        ) from exc
    connection = duckdb.connect()
    connection.register("results", dataset)
    relation = connection.execute(sql)
    columns = [d[0] for d in relation.description]
    return StatsTable(columns, [tuple(row) for row in relation.fetchall()], sql, "duckdb")


def _with_day(schema: Any) -> Any:
    import pyarrow as pa

    return schema.append(pa.field("day", pa.string()))


@requires(
    "athena:GetQueryExecution", "athena:GetQueryResults", "athena:StartQueryExecution", resource="athena"
)
def run_athena(
    sql: str,
    *,
    athena_client: Any,
    database: str,
    output_location: str,
    workgroup: str = "primary",
    poll_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> StatsTable:
    """The query on Athena: start, wait, read every page (the header row first)."""
    started = athena_client.start_query_execution(
        QueryString=sql,
        QueryExecutionContext={"Database": database},
        ResultConfiguration={"OutputLocation": output_location},
        WorkGroup=workgroup,
    )
    query_id = started["QueryExecutionId"]
    while True:
        status = athena_client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
        if status["State"] in DONE:
            break
        sleep(poll_s)
    if status["State"] != "SUCCEEDED":
        raise ConfigurationError(
            f"Athena query {query_id} {status['State']}: {status.get('StateChangeReason', 'no reason given')}; "
            f"check the database {database!r} (serverless.yml's Glue table) and the output location {output_location}"
        )
    pages = athena_client.get_paginator("get_query_results").paginate(QueryExecutionId=query_id)
    rows = [
        [cell.get("VarCharValue") for cell in row["Data"]]
        for page in pages
        for row in page["ResultSet"]["Rows"]
    ]
    if not rows:
        return StatsTable([], [], sql, "athena")
    header, body = rows[0], rows[1:]
    return StatsTable(
        header,
        [tuple(_typed(name, value) for name, value in zip(header, row, strict=True)) for row in body],
        sql,
        "athena",
    )


def _typed(column: str, value: str | None) -> Any:
    if value is None:
        return None
    if column == "frames":
        return int(value)
    if column in ("hour", "day"):
        return datetime.fromisoformat(value.replace(" ", "T")[:19])
    return value


def _literal(moment: datetime) -> str:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def stats_command(
    by: str,
    since: datetime,
    until: datetime,
    *,
    engine: str | None,
    bucket: str,
    endpoint_url: str | None,
    region: str | None,
    database: str | None,
    output_location: str | None,
    table: str | None = None,
) -> StatsTable:
    """`camsort stats`: DuckDB on a local endpoint (the local admin's credentials), else Athena.

    Locally, with ``table``, the results table's stream is exported first (what the exportResults
    function does continuously on AWS; moto has no event source mappings)."""
    import boto3

    from infra.local.stack import DEFAULT_REGION, local_client

    engine = engine or ("duckdb" if endpoint_url else "athena")
    if endpoint_url and table:
        from infra.ops.archive_jobs import export_results_locally

        export_results_locally(endpoint_url, bucket, table, region=region or DEFAULT_REGION)
    if endpoint_url:
        s3 = local_client("s3", endpoint_url, region or DEFAULT_REGION)
        athena = local_client("athena", endpoint_url, region or DEFAULT_REGION)
    else:
        session = boto3.session.Session(region_name=region)
        s3, athena = session.client("s3"), session.client("athena")
    return run_stats(
        by, since, until, engine=engine, bucket=bucket, s3_client=s3, athena_client=athena,
        database=database, output_location=output_location,
    )  # fmt: skip


def run_stats(
    by: str,
    since: datetime,
    until: datetime,
    *,
    engine: str,
    bucket: str,
    s3_client: Any = None,
    athena_client: Any = None,
    database: str | None = None,
    output_location: str | None = None,
) -> StatsTable:
    """The same SQL on DuckDB (the archive's files) or Athena (the Glue table)."""
    names = parse_by(by)
    if engine == "duckdb":
        return run_duckdb(stats_sql("results", names, since, until), s3_client=s3_client, bucket=bucket)
    if not database:
        raise ConfigurationError(
            "--engine athena needs --database (the stack's Glue database, camsort_<stage>)"
        )
    table = f'"{database}"."results"'
    return run_athena(
        stats_sql(table, names, since, until),
        athena_client=athena_client,
        database=database,
        output_location=output_location or f"s3://{bucket}/archive/athena-results/",
    )


def print_stats(table: StatsTable, console: Any, title: str) -> None:
    from rich.table import Table

    shown = Table(title=f"{title} ({table.engine})")
    for column in table.columns:
        shown.add_column(column, justify="right" if column == "frames" else "left")
    for row in table.rows:
        shown.add_row(*[_cell(value) for value in row])
    console.print(shown)
    if not table.rows:
        console.print(
            "no results in that range (is the results archive exported? `camsort stats` reads archive/results/)"
        )


def plot_stats(table: StatsTable, path: str) -> str:
    """Frames over the first time column (or the first column), one line per other group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axis = next((c for c in ("hour", "day") if c in table.columns), table.columns[0])
    x_index, n_index = table.columns.index(axis), table.columns.index("frames")
    others = [i for i, c in enumerate(table.columns) if i not in (x_index, n_index)]
    series: dict[str, dict[Any, int]] = {}
    for row in table.rows:
        name = " / ".join(str(row[i]) for i in others) or "frames"
        series.setdefault(name, {})[row[x_index]] = row[n_index]
    figure, axes = plt.subplots(figsize=(10, 5))
    for name, points in sorted(series.items()):
        xs = sorted(points)
        axes.plot(xs, [points[x] for x in xs], marker="o", label=name)
    axes.set_xlabel(axis)
    axes.set_ylabel("frames")
    axes.legend(fontsize="small")
    figure.autofmt_xdate()
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return "" if value is None else str(value)
