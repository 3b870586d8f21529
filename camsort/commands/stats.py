"""`camsort stats`: frames per camera / hour / label from the results archive (DuckDB or Athena)."""

from __future__ import annotations

import click


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
@click.option("--plot", "plot_path", default=None, help="Also write a chart (PNG) here.")
@click.option("--show-sql", is_flag=True, help="Print the SQL.")
def stats(
    by, since, until, engine, bucket, endpoint_url, region, database, output_location, plot_path, show_sql
) -> None:
    """The same SQL on either engine; prints a table (or writes a chart with --plot)."""
    from rich.console import Console

    from camsort.commands.results import parse_time
    from infra.stats import plot_stats, print_stats, stats_command

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
    )
    console = Console()
    if show_sql:
        console.print(table.sql)
    print_stats(table, console, f"frames by {by}, {since} to {until}")
    if plot_path:
        console.print(f"chart: {plot_stats(table, plot_path)}")
