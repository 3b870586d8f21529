"""bench.perf.figures and bench.perf.markdown: pricing options, targets and markdown from a fixed results dict (no measurement)."""

from __future__ import annotations

import pytest

from bench.perf.figures import a_over_c, price, targets
from bench.perf.markdown import END_MARK, START_MARK, render_markdown, write_section


def cell(batch, mean_ms, wall, compute):
    return {
        "batch_size": batch,
        "invocation": {"mean_ms": mean_ms, "p50_ms": mean_ms},
        "wall_per_frame_ms": wall,
        "compute_per_frame_ms": compute,
        "wall_over_compute": round(wall / compute, 3),
        "aws_calls_per_frame": 3.0,
    }


def results():
    rows = [
        {"config": "EXTENDED t2 spin-default b10", "threads": 2, "ms_per_frame": 30.0, "session_load_s": 0.3},
        {"config": "EXTENDED t1 spin-default b10", "threads": 1, "ms_per_frame": 55.0, "session_load_s": 0.3},
    ]
    path = {
        "gflop_per_frame": 7.7,
        "sweep": {
            "rows": rows,
            "baseline": rows[0]["config"],
            "best": rows[0]["config"],
            "speedup_over_baseline": 1.0,
            "extra_session_load_s": 0.0,
        },
        "inference_vs_gemm": {
            "gemm": "int8_qlinearmatmul",
            "gemm_gflops": 300.0,
            "baseline": {"achieved_gflops": 256.7, "fraction": 0.856},
            "best": {"achieved_gflops": 256.7, "fraction": 0.856},
        },
        "latency": {"20ms-batch10": cell(10, 400.0, 40.0, 36.0), "20ms-batch1": cell(1, 80.0, 80.0, 40.0)},
        "latency_1_thread": {"20ms-batch10": cell(10, 650.0, 65.0, 61.0)},
        "cold_start": {"median_s": 1.1, "runs_s": [1.1], "phases_median_s": {"imports": 0.5}},
    }
    return {
        "created_at": "2026-12-01T00:00:00Z",
        "machine": {
            "cpu_model": "x",
            "cpu_flags": ["avx2"],
            "onnxruntime": "1",
            "load_average_at_start": [1, 1, 1],
        },
        "threads": 2,
        "gemm": {
            "threads": 2,
            "rates": {"int8_qlinearmatmul": {"gflops": 300.0, "median_gflops": 250.0}},
            "rates_1_thread": {},
        },
        "paths": {"int8": path},
        "requests": MEASURED,
        "requests_with_tags": MEASURED
        | {"per_frame": MEASURED["per_frame"] | {"s3:PutObjectTagging frames": 1.0}},
    }


# Requests as bench/requests.py measures them (the pricing arithmetic is test_bench_pricing's).
MEASURED = {
    "frames": 20,
    "invocations": 2,
    "per_frame": {"s3:GetObject frames": 1.0, "sqs:SendMessage (S3 notification)": 1.0},
    "per_invocation": {"sqs:ReceiveMessage queue": 1.0},
    "dynamodb_items": {"dynamodb:PutItem results": {"write_units_per_frame": 1.0}},
    "log_bytes_per_frame": 1000,
    "left_out": {},
    "outcomes": {"ok:bus": 20},
}


def test_price_offers_the_measured_cells_and_one_vcpu():
    priced = price(results(), cpus=2)["int8"]
    assert [(o["threads"], o["batch_size"]) for o in priced["options"]] == [(2, 1), (2, 10), (1, 10)]
    assert priced["options"][2]["seconds_per_batch"] == 0.65  # the measured one-thread cell
    assert priced["recommendation"]["memory_mb"] == 1769  # 1,769 MB x 0.65 s < 3,538 MB x 0.4 s
    assert set(priced["usd_per_million"]) >= {"1vcpu-batch10-arm64", "2vcpu-batch10-x86"}
    with_tags = priced["recommendation_with_tags"]["usd_per_million"]["total"]
    assert with_tags - priced["recommendation"]["usd_per_million"]["total"] == pytest.approx(5.0, abs=1e-3)
    with pytest.raises(ValueError, match="measured requests"):
        price({k: v for k, v in results().items() if k != "requests"}, cpus=2)


def test_targets_compare_against_the_issue_limits():
    measured = results()
    measured["pricing"] = price(measured, 2)
    rows = {row["target"]: row for row in targets(measured)}
    assert rows["int8: wall / compute per frame, 20 ms, batch 10"] == {
        "target": "int8: wall / compute per frame, 20 ms, batch 10",
        "value": 1.111,
        "limit": 1.15,
        "met": True,
    }
    assert rows["int8: inference / GEMM rate (best option)"]["met"] is True
    assert rows["int8 cold start (s, median)"]["met"] is False
    assert rows["a / c (warm batch-1 p50)"]["met"] is None  # the harness did not run


def test_a_over_c_from_the_harness_results():
    harness = {
        "paths": {
            "reference": {"warm_batch_1": {"p50_ms": 300.0}},
            "int8": {"warm_batch_1": {"p50_ms": 50.0}},
        }
    }
    assert a_over_c(harness)["a_over_c"] == 6.0
    assert a_over_c({"paths": {}}) is None


def test_markdown_section_is_replaced_between_markers(tmp_path):
    measured = results()
    measured["pricing"] = price(measured, 2)
    measured["targets"] = targets(measured)
    measured["machine"]["load_average_at_end"] = [1, 1, 1]
    text = render_markdown(measured)
    assert "## Performance" in text and "loaded CPU" in text and "20ms-batch10" in text
    path = tmp_path / "results.md"
    path.write_text("# Bench\n\nhandler tables\n")
    write_section(path, "first\n")
    write_section(path, "second\n")
    written = path.read_text()
    assert written.startswith("# Bench\n\nhandler tables\n")
    assert written.count(START_MARK) == written.count(END_MARK) == 1
    assert "second" in written and "first" not in written
