"""bench.report and bench.report_tables: comparison rows, ratios, target checks and the rendered tables, on a fixed result."""

from __future__ import annotations

import copy

import pytest
from rich.console import Console

from bench import report, report_tables


def _path(p50, p95, b1, b10, cold, rss, feat, package, stages):
    return {
        "warm_batch_1": {"p50_ms": p50, "p95_ms": p95},
        "warm_batch_10_per_frame": {"p50_ms": p50 / 2},
        "throughput_fps": {"batch_1": b1, "batch_10": b10},
        "cold_start_s": {"median": cold},
        "peak_rss_mib": rss,
        "featurization_fps": feat,
        "package_mib": package,
        "stages": {name: {"p50_ms": value} for name, value in stages.items()},
    }


RESULTS = {
    "created_at": "2026-11-22T10:00:00Z",
    "machine": {"cpus": 2},
    "settings": {"frames": 200, "width": 1280, "height": 720, "weights": "none"},
    "paths": {
        "reference": _path(
            300.0, 360.0, 3.3, 8.0, 9.5, 1500.0, 12.0, 1200.0, {"get_object": 2.0, "decode": 9.0}
        ),
        "fp32": _path(60.0, 70.0, 16.0, 20.0, 1.5, 600.0, 20.0, 90.0, {"get_object": 2.0, "inference": 50.0}),
        "int8": _path(20.0, 25.0, 48.0, 60.0, 0.8, 400.0, 60.0, 90.0, {"decode": 4.0, "inference": 12.0}),
    },
    "draft": {
        "decode": {"draft": {"p50_ms": 3.5, "p95_ms": 4.0}, "full": {"p50_ms": 11.0, "p95_ms": 13.0}},
        "agreement": {
            "fp32": {"n": 200, "labels": 0.985, "top_labels": 0.99, "max_abs_probability_diff": 0.0312},
        },
    },
    "notes": ["weights `none`: speed does not depend on the weight values, labels do"],
}


def test_rows_follow_the_metric_list_and_ratios_are_literal_a_over_b():
    rows = {row.name: row for row in report.comparison_rows(RESULTS)}
    assert list(rows) == [metric.name for metric in report.METRICS]
    p50 = rows["warm latency p50, batch 1"]
    assert p50.values == {"reference": 300.0, "fp32": 60.0, "int8": 20.0}
    assert (p50.a_over_b, p50.a_over_c) == (5.0, 15.0)
    throughput = rows["throughput, batch 1"]
    assert throughput.a_over_b == pytest.approx(0.206)  # literal a/b: below 1 when ours is faster
    assert rows["warm latency p50 per frame, batch 10"].values["int8"] == 10.0


def test_a_path_that_was_not_run_leaves_blanks_not_errors():
    partial = copy.deepcopy(RESULTS)
    del partial["paths"]["reference"]
    rows = report.comparison_rows(partial)
    assert all(row.values["reference"] is None and row.a_over_b is None for row in rows)
    assert "| warm latency p50, batch 1 (ms) | — | 60.0 | 20.0 | — | — |" in report_tables.render_markdown(
        partial
    )


def test_targets_are_checked_against_the_issue_numbers():
    checks = {(c.name, c.path): c for c in report.check_targets(RESULTS)}
    assert checks[("warm p50 per 720p frame, decode included", "int8")].met is False  # 20 > 15
    speedup = checks[("speed-up over (a), warm p50 (a/c)", "int8")]
    assert (speedup.value, speedup.met) == (15.0, True)  # exactly on the target counts as met
    assert checks[("cold start", "int8")].met is True
    assert checks[("cold start", "fp32")].met is False
    assert checks[("training featurization", "int8")].met is False
    assert checks[("Lambda package, unzipped", "int8")].met is True


def test_an_unmeasured_target_is_reported_as_such():
    partial = copy.deepcopy(RESULTS)
    del partial["paths"]["int8"]["package_mib"]
    checks = {(c.name, c.path): c for c in report.check_targets(partial)}
    assert checks[("Lambda package, unzipped", "int8")].met is None
    assert report_tables.fmt_met(None) == "not measured"


def test_markdown_holds_every_table_with_formatted_numbers():
    markdown = report_tables.render_markdown(RESULTS)
    assert "| warm latency p50, batch 1 (ms) | 300.0 | 60.0 | 20.0 | 5.00 | 15.00 |" in markdown
    assert "| peak RSS (MiB) | 1,500 | 600 | 400 | 2.50 | 3.75 |" in markdown
    assert (
        "| warm p50 per 720p frame, decode included | (c) handler int8 | 20.00 | <= 15 ms | **missed** |"
        in markdown
    )
    # stages: union over paths in order of first appearance, blanks where a path has no such stage
    assert "| get_object | 2.00 | 2.00 | — |" in markdown
    assert "| decode | 9.00 | — | 4.00 |" in markdown
    assert "| inference | — | 50.00 | 12.00 |" in markdown
    assert "| decode p50 (ms) | 3.50 | 11.00 |" in markdown
    assert "98.5% of 200 frames" in markdown
    assert "- weights `none`: speed does not depend on the weight values, labels do" in markdown


def test_stage_names_follow_the_handler_order_then_the_groups():
    results = copy.deepcopy(RESULTS)
    results["paths"]["int8"]["stages"]["all stages"] = {"p50_ms": 30.0}
    results["paths"]["int8"]["stages"]["dup_check"] = {"p50_ms": 1.0}
    assert report.stage_names(results) == ["dup_check", "get_object", "decode", "inference", "all stages"]


def test_cold_start_phases_are_tabulated_when_measured():
    results = copy.deepcopy(RESULTS)
    assert "Cold start, phase by phase" not in report_tables.render_markdown(results)
    results["paths"]["int8"]["cold_start_s"]["phases_median_s"] = {
        "started": 0.1,
        "imported": 0.6,
        "first_result": 0.8,
    }
    markdown = report_tables.render_markdown(results)
    assert (
        "| first result written; for (a) this includes building the ResNet50 and the first predict | — | — | 0.80 |"
        in markdown
    )


def test_rich_tables_render_the_same_figures():
    console = Console(record=True, width=220)
    console.print(report_tables.rich_table(RESULTS))
    console.print(report_tables.rich_targets_table(RESULTS))
    text = console.export_text()
    assert "15.00" in text and "300.0" in text and "1,500" in text
    assert "missed" in text and "met" in text


def test_formatting_helpers():
    assert report_tables.fmt(None) == "—"
    assert report_tables.fmt(1234.567, 1) == "1,234.6"
    assert report_tables.fmt_ratio(2.0) == "2.00"
    assert report_tables.fmt_ratio(None) == "—"


def test_operator_section_lists_the_costliest_operators_of_either_model():
    results = copy.deepcopy(RESULTS)
    results["paths"]["fp32"]["profile"] = {
        "onnxruntime_ops": [{"op": "Conv", "ms_per_run": 40.0}, {"op": "Add", "ms_per_run": 2.0}]
    }
    results["paths"]["int8"]["profile"] = {
        "onnxruntime_ops": [
            {"op": "QLinearConv", "ms_per_run": 9.0},
            {"op": "DequantizeLinear", "ms_per_run": 1.5},
            {"op": "Add", "ms_per_run": 1.0},
        ]
    }
    rows = report.operator_rows(results, top=2)
    assert [op for op, _ in rows] == ["QLinearConv", "DequantizeLinear", "Conv", "Add"]
    markdown = report_tables.render_markdown(results)
    assert "| QLinearConv | — | 9.00 |" in markdown
    assert "| Conv | 40.00 | — |" in markdown


def test_no_operator_section_without_a_profile():
    assert report.operator_rows(RESULTS) == []
    assert "onnxruntime operators" not in report_tables.render_markdown(RESULTS)


def test_time_split_sentence_gives_shares_of_the_per_frame_total():
    results = copy.deepcopy(RESULTS)
    results["paths"]["int8"]["stages"].update(
        {"all stages": {"p50_ms": 40.0}, "S3 + DynamoDB calls": {"p50_ms": 20.0}}
    )
    assert report_tables.time_split_lines(results) == [
        "(c) handler int8: 40.0 ms per frame (p50 of the stage sum): S3 + DynamoDB calls 20.0 ms (50%), "
        "decode 4.0 ms (10%), inference 12.0 ms (30%)"
    ]
    assert "- (c) handler int8: 40.0 ms per frame" in report_tables.render_markdown(results)


def test_cold_profile_parts_are_listed_per_path():
    results = copy.deepcopy(RESULTS)
    results["paths"]["int8"]["profile"] = {
        "cold": {
            "total_s": 2.5,
            "parts": [
                {"what": "model.onnx + manifest.json from S3", "cumulative_s": 0.31},
                {"what": "onnxruntime session creation", "cumulative_s": 0.52},
            ],
        }
    }
    results["paths"]["int8"]["cold_start_s"]["imports_s"] = {"numpy": 0.05, "onnxruntime": 0.31}
    markdown = report_tables.render_markdown(results)
    assert (
        "- (c) handler int8, imports in a fresh interpreter (`python -X importtime`): numpy 0.05 s, onnxruntime 0.31 s"
        in markdown
    )
    assert (
        "- (c) handler int8, cold start under cProfile (2.50 s in all): model.onnx + manifest.json from S3 0.31 s; "
        "onnxruntime session creation 0.52 s"
    ) in markdown


def test_header_names_the_machine_and_the_setup():
    results = copy.deepcopy(RESULTS)
    assert (
        "one `make bench` run on 2 CPUs, 2026-11-22T10:00:00Z; weights `none`"
        in report_tables.render_markdown(results)
    )
    results["machine"].update(cpu_model="AMD EPYC", cpu_flags=["avx2", "fma"])
    assert "on 2 CPUs (AMD EPYC; avx2, fma), 2026-11-22T10:00:00Z" in report_tables.render_markdown(results)
