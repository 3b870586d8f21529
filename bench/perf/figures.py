"""The perf run's derived figures (pure, from its results dict): price, a / c, the targets."""

from __future__ import annotations

from typing import Any

from bench import stats

TARGETS = {
    "wall_over_compute_20ms_batch10": 1.15,
    "inference_fraction_of_gemm": 0.8,
    "a_over_c": 5.0,
    "int8_cold_start_s": 1.0,
    "usd_per_million_arm64": 5.0,
    "rekognition_ratio": 200.0,
}


def price(results: dict[str, Any], cpus: int, peak_rss_mib: dict[str, float] | None = None) -> dict[str, Any]:
    """Cost per million frames for each precision at 20 ms added latency, and the recommendation.

    Options: the measured cells at the function's threads (batch 1 and 10) and the measured
    one-thread cell (batch 10), priced at the memory that gives that many vCPUs. Requests: the
    measured ones (``results["requests"]``, the default configuration: tags off; and
    ``requests_with_tags`` when measured), never assumed.
    """
    from bench.perf.pricing import Option, bill_lines, cost_per_million, memory_for_vcpus, recommend

    if "requests" not in results:
        raise ValueError("no measured requests per frame to price (bench/requests.py did not run)")
    lines = bill_lines(results["requests"])
    tagged = bill_lines(results["requests_with_tags"]) if "requests_with_tags" in results else None
    out: dict[str, Any] = {}
    for precision, path in results["paths"].items():
        options = []
        measured = [(cpus, path.get("latency", {}))]
        if cpus > 1:
            measured.append((1, path.get("latency_1_thread", {})))
        for threads, cells in measured:
            for batch in (1, 10):
                cell = cells.get(f"20ms-batch{batch}")
                if cell:
                    options.append(Option(threads, batch, cell["invocation"]["mean_ms"] / 1000.0))
        if not options:
            continue
        peak = (peak_rss_mib or {}).get(precision)  # the harness's child, when it ran: memory floor
        costs = {
            f"{o.threads}vcpu-batch{o.batch_size}-{arch}": cost_per_million(
                o.seconds_per_batch, o.batch_size, memory_for_vcpus(o.threads, peak), arch, lines
            ).as_dict()
            for o in options
            for arch in ("arm64", "x86")
        }
        out[precision] = {
            "options": [o.__dict__ for o in options],
            "usd_per_million": costs,
            "recommendation": recommend(options, lines, peak, "arm64"),
        }
        if tagged is not None:
            out[precision]["recommendation_with_tags"] = recommend(options, tagged, peak, "arm64")
    return out


def a_over_c(harness_results: dict[str, Any]) -> dict[str, Any] | None:
    """(a) notebook / (c) int8 warm batch-1 p50 from bench.harness's results.json (same machine)."""
    try:
        a = harness_results["paths"]["reference"]["warm_batch_1"]["p50_ms"]
        c = harness_results["paths"]["int8"]["warm_batch_1"]["p50_ms"]
    except KeyError:
        return None
    return {
        "a_p50_ms": a,
        "c_p50_ms": c,
        "a_over_c": stats.ratio(a, c),
        "from": harness_results.get("created_at"),
    }


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each issue-10 target: measured value, target, met (None when not measured)."""
    rows = []

    def add(name: str, value: float | None, target: float, higher_is_better: bool) -> None:
        met = None if value is None else (value >= target if higher_is_better else value <= target)
        rows.append({"target": name, "value": value, "limit": target, "met": met})

    for precision, path in results["paths"].items():
        cell = path.get("latency", {}).get("20ms-batch10")
        add(
            f"{precision}: wall / compute per frame, 20 ms, batch 10",
            cell and cell["wall_over_compute"],
            TARGETS["wall_over_compute_20ms_batch10"],
            False,
        )
        add(
            f"{precision}: inference / GEMM rate (best option)",
            path["inference_vs_gemm"]["best"]["fraction"],
            TARGETS["inference_fraction_of_gemm"],
            True,
        )
    comparison = results.get("handler_comparison") or {}
    add("a / c (warm batch-1 p50)", comparison.get("a_over_c"), TARGETS["a_over_c"], True)
    cold = results["paths"].get("int8", {}).get("cold_start", {})
    add("int8 cold start (s, median)", cold.get("median_s"), TARGETS["int8_cold_start_s"], False)
    rec = results.get("pricing", {}).get("int8", {}).get("recommendation")
    add(
        "$ per million frames, arm64 (int8, recommended)",
        rec and rec["usd_per_million"]["total"],
        TARGETS["usd_per_million_arm64"],
        False,
    )
    add(
        "Rekognition DetectLabels / ours",
        rec and rec["rekognition_ratio"],
        TARGETS["rekognition_ratio"],
        True,
    )
    return rows


RATES_FPS = (0.1, 1.0, 10.0, 100.0)  # all cameras together: one slow camera .. a busy site
WINDOWS_S = (0.0, 2.0, 5.0)  # maximumBatchingWindow: none, serverless.yml's default, prod's


def batching_tradeoff(
    results: dict[str, Any], batch_size: int = 10, memory_mb: int = 1769
) -> list[dict[str, Any]]:
    """Upload-to-result on AWS (bench.perf.upload_latency.aws_model) and $ per million frames, for each
    rate and ``maximumBatchingWindow``: the batch a window fills is what the invocation costs divide by."""
    from bench.perf.pricing import bill_lines, cost_per_million, memory_for_vcpus
    from bench.perf.upload_latency import aws_model, measured_invocation_s

    # The cells measured at the function's threads (batch 1 and 10), priced at the memory giving
    # that many vCPUs: one configuration throughout.
    cells = results.get("paths", {}).get("int8", {}).get("latency", {})
    if "20ms-batch1" not in cells or "20ms-batch10" not in cells or "requests" not in results:
        return []
    invocation = measured_invocation_s(cells)
    lines = bill_lines(results["requests"])
    memory_mb = memory_for_vcpus(int(results.get("threads", 1)))
    rows = []
    for rate in RATES_FPS:
        for window in WINDOWS_S:
            row = aws_model(rate, batch_size, window, invocation)
            batch = row["frames_per_invocation"]
            cost = cost_per_million(invocation(batch), batch, memory_mb, "arm64", lines)
            rows.append(row | {"usd_per_million": round(cost.total, 2)})
    return rows
