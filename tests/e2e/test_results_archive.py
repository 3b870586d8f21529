"""Results in Parquet on the local system: frames classified by the worker, the results table's
stream exported by the exportResults code under its derived role, and `camsort stats` on DuckDB
counting exactly what the table holds (per camera, hour and label), re-exports included."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from camsort.cli import main
from infra.demo.accounting import scan_results
from infra.demo.simulator import simulate_cameras
from infra.ops.archive_jobs import export_results_locally
from infra.ops.stats import run_stats, stats_sql


def expected_counts(items) -> Counter:
    counts: Counter = Counter()
    for item in items:
        if not item.get("camera_id"):
            continue
        captured = datetime.fromisoformat(item["captured_at"].replace("Z", "+00:00"))
        hour = captured.replace(minute=0, second=0, microsecond=0, tzinfo=None)
        counts[item["camera_id"], hour, item.get("label") or item["status"]] += 1
    return counts


def test_results_reach_parquet_and_stats_count_them_on_duckdb(local_stack, run_worker, tmp_path):
    simulate_cameras(local_stack, cameras=2, frames_per_camera=3, bad_objects=True, seed=3)
    run_worker()
    items = scan_results(local_stack)
    expected = expected_counts(items)
    assert sum(expected.values()) >= 6 and any(label == "rejected" for *_, label in expected)

    endpoint, bucket, table = local_stack.endpoint_url, local_stack.names.bucket, local_stack.names.table
    exported = export_results_locally(endpoint, bucket, table, region=local_stack.region)
    assert exported["rows"] == sum(expected.values())
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert all(f"/archive/results/day={today}/" in uri for uri in exported["files"])

    now = datetime.now(UTC)
    window = (now - timedelta(hours=2), now + timedelta(minutes=1))
    s3 = local_stack.client("s3")
    result = run_stats("camera,hour,label", *window, engine="duckdb", bucket=bucket, s3_client=s3)
    assert result.columns == ["camera", "hour", "label", "frames"]
    assert Counter({row[:3]: row[3] for row in result.rows}) == expected

    # Exported twice (a pump re-run, a retried batch): each result still counts once.
    export_results_locally(endpoint, bucket, table, region=local_stack.region)
    again = run_stats("camera,hour,label", *window, engine="duckdb", bucket=bucket, s3_client=s3)
    assert again.rows == result.rows
    by_camera = run_stats("camera", *window, engine="duckdb", bucket=bucket, s3_client=s3)
    per_camera: Counter = Counter()
    for (camera, _, _), n in expected.items():
        per_camera[camera] += n
    assert dict(by_camera.rows) == per_camera
    assert (
        run_stats(
            "camera",
            now - timedelta(days=3),
            now - timedelta(days=2),
            engine="duckdb",
            bucket=bucket,
            s3_client=s3,
        ).rows
        == []
    )

    # The command: a table, or a chart.
    chart = tmp_path / "stats.png"
    args = ["stats", "--by", "hour,label", "--since", window[0].isoformat(), "--until", window[1].isoformat(),
            "--bucket", bucket, "--endpoint-url", endpoint, "--table", table, "--plot", str(chart)]  # fmt: skip
    run = CliRunner().invoke(main, args)
    assert run.exit_code == 0, run.output
    assert "frames" in run.output and "rejected" in run.output
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_stats_sql_is_one_text_for_both_engines():
    since, until = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 3, tzinfo=UTC)
    sql = stats_sql('"camsort_prod"."results"', ["camera", "hour", "label"], since, until)
    assert "WHERE day BETWEEN '2026-12-01' AND '2026-12-02'" in sql  # partition pruning, until exclusive
    assert "captured_at < TIMESTAMP '2026-12-03 00:00:00.000'" in sql
    assert stats_sql("results", ["camera", "hour", "label"], since, until) == sql.replace(
        '"camsort_prod"."results"', "results"
    )


@pytest.mark.parametrize("by", ["camera;drop table x", "", "pixels"])
def test_unknown_groups_are_refused_before_any_sql(by):
    run = CliRunner().invoke(
        main,
        [
            "stats",
            "--by",
            by,
            "--since",
            "2026-12-01",
            "--until",
            "2026-12-02",
            "--endpoint-url",
            "http://127.0.0.1:9",
        ],
    )
    assert run.exit_code == 1 and "--by" in run.output and "Traceback" not in run.output


def test_the_athena_path_sends_the_same_sql_and_reads_athenas_result_pages(moto_server):
    """moto's Athena accepts and records queries but executes no SQL: the rows it returns are seeded
    here (moto's documented /moto-api/static/athena/query-results). What this checks is ours: the
    requests (botocore validates them against Athena's API model), the query text and database moto
    recorded, the wait for SUCCEEDED and the parsing of Athena's ResultSet (header row first)."""
    import requests

    from infra.local.stack import local_client
    from infra.ops.stats import run_athena

    header = ["camera", "hour", "label", "frames"]
    rows = [
        header,
        ["cam-01", "2026-12-01 08:00:00.000", "bus", "12"],
        ["cam-01", "2026-12-01 09:00:00.000", "rejected", "1"],
    ]
    seeded = {"results": [{"rows": [{"Data": [{"VarCharValue": v} for v in row]} for row in rows]}]}
    requests.post(
        f"{moto_server.endpoint_url}/moto-api/static/athena/query-results", json=seeded, timeout=10
    ).raise_for_status()

    athena = local_client("athena", moto_server.endpoint_url)
    since, until = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)
    sql = stats_sql('"camsort_test"."results"', ["camera", "hour", "label"], since, until)
    table = run_athena(
        sql,
        athena_client=athena,
        database="camsort_test",
        output_location="s3://camsort-frames-test/archive/athena-results/",
        sleep=lambda s: None,
    )
    assert (table.columns, table.engine) == (header, "athena")
    assert table.rows == [
        ("cam-01", datetime(2026, 12, 1, 8), "bus", 12),
        ("cam-01", datetime(2026, 12, 1, 9), "rejected", 1),
    ]
    executions = [
        athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
        for query_id in athena.list_query_executions()["QueryExecutionIds"]
    ]
    (recorded,) = [e for e in executions if e["Query"] == sql]
    assert recorded["QueryExecutionContext"]["Database"] == "camsort_test"
    # Athena (and moto) report where it wrote the result: a file under the output location.
    assert recorded["ResultConfiguration"]["OutputLocation"].startswith(
        "s3://camsort-frames-test/archive/athena-results/"
    )
