"""Issue 10's bench phases, in one run on this machine: the limit, the options, the network, the price.

Phases (each shows progress), per handler precision (fp32 = (b), int8 = (c)):

1. GEMM limit: fp32 / int8 GEMM rates in onnxruntime at the function's threads (bench.gemm);
2. model FLOPs and the onnxruntime option sweep (bench.ort_sweep): inference as a fraction
   of the limit, the best option and what it cost;
3. latency: the handler through the faults proxy at 0 and 20 ms added latency, batch 1 and
   10 (bench.latency), wall vs compute per frame, plus a forced duplicate look-up cell;
4. cold start, phase by phase, in fresh processes (bench.coldstart);
5. the int8 guard with and without reduce_range (bench.int8_guard);
6. price per million frames and the memory / batch recommendation (bench.pricing).

Writes ``perf.json`` and the "Performance" section of ``results.md`` (between markers, so the
handler comparison written by ``bench.harness`` stays).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench import stats
from bench.config import BenchConfig
from bench.inputs import backbone_paths, bench_frames, ensure_model, training_set
from bench.machine import machine_info

PRECISIONS = ("fp32", "int8")
GEMM_KIND = {"fp32": "fp32_matmul", "int8": "int8_qlinearmatmul"}
START_MARK, END_MARK = "<!-- perf:start -->", "<!-- perf:end -->"
TARGETS = {
    "wall_over_compute_20ms_batch10": 1.15,
    "inference_fraction_of_gemm": 0.8,
    "a_over_c": 5.0,
    "int8_cold_start_s": 1.0,
    "usd_per_million_arm64": 5.0,
    "rekognition_ratio": 200.0,
}


@dataclass(frozen=True)
class PerfOptions:
    latency_frames: int = 30
    sweep_frames: int = 20
    cold_starts: int = 3
    guard: bool = True


def run_perf(config: BenchConfig, options: PerfOptions = PerfOptions(), console=None) -> dict[str, Any]:  # noqa: B008
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from bench.coldstart import child_environment, cold_start_once, summarize_cold_starts
    from bench.gemm import fraction_of_limit, gemm_rates, model_flops
    from bench.int8_guard import guard_with_and_without_reduce_range
    from bench.latency import Cell, run_cells, s3_sqs_events, upload_frames
    from bench.ort_sweep import run_sweep
    from functions.image_loader import load_image
    from functions.model import ModelSession, available_cpus
    from infra.local_stack import create_local_stack, upload_model
    from infra.moto_server import LOCAL_AWS_ENV, MotoServer
    from infra.topology import StackNames

    console = console or Console()
    started = time.perf_counter()
    cpus = available_cpus()
    results: dict[str, Any] = {
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine_info(),
        "threads": cpus,
        "options": options.__dict__,
        "paths": {},
    }
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("perf: frames and models", total=None)

            def phase(description: str):
                def update(step: str, done: int, total: int) -> None:
                    progress.update(
                        task, description=f"{description}: {step}", completed=done, total=total or None
                    )

                progress.update(task, description=description, completed=0, total=None)
                return update

            frames = bench_frames(config)
            train_root = training_set(config)
            model_dirs = {p: ensure_model(config, p, train_root) for p in PRECISIONS}
            frame_bytes = [frame.read() for frame in frames]
            sweep_pixels = np.stack(
                [load_image(data, source="bench") for data in frame_bytes[: options.sweep_frames]]
            )

            phase("GEMM limit (onnxruntime MatMul / MatMulInteger / QLinearMatMul)")
            results["gemm"] = {"threads": cpus, "rates": gemm_rates(cpus), "rates_1_thread": gemm_rates(1)}

            for precision in PRECISIONS:
                model_path = model_dirs[precision] / "model.onnx"
                flops = model_flops(model_path)
                sweep = run_sweep(
                    model_path, sweep_pixels, cpus, on_progress=phase(f"{precision}: onnxruntime sweep")
                )
                baseline = sweep["rows"][0]
                best = min(sweep["rows"], key=lambda row: row["ms_per_frame"])
                limit = results["gemm"]["rates"][GEMM_KIND[precision]]["gflops"]
                results["paths"][precision] = {
                    "gflop_per_frame": round(flops / 1e9, 3),
                    "sweep": sweep,
                    "inference_vs_gemm": {
                        "gemm": GEMM_KIND[precision],
                        "gemm_gflops": limit,
                        "baseline": fraction_of_limit(flops, baseline["ms_per_frame"] / 1000.0, limit),
                        "best": fraction_of_limit(flops, best["ms_per_frame"] / 1000.0, limit),
                    },
                }

            with MotoServer(log_path=config.work_dir / "perf-moto.log") as server:
                for name, value in LOCAL_AWS_ENV.items():
                    os.environ.setdefault(name, value)
                stack = create_local_stack(server.endpoint_url, StackNames.for_stage("perf"))
                for precision in PRECISIONS:
                    model = ModelSession.open(str(model_dirs[precision]), threads=cpus)
                    results["paths"][precision]["latency"] = run_cells(
                        server.endpoint_url,
                        stack.names.bucket,
                        stack.names.table,
                        model,
                        frame_bytes[: options.latency_frames],
                        frames_prefix=stack.names.frames_prefix,
                        on_progress=phase(f"{precision}: handler at added latency"),
                    )
                    del model
                    # One vCPU's worth of Lambda (1,769 MB) runs one onnxruntime thread: measured, not derived.
                    model = ModelSession.open(str(model_dirs[precision]), threads=1)
                    results["paths"][precision]["latency_1_thread"] = run_cells(
                        server.endpoint_url,
                        stack.names.bucket,
                        stack.names.table,
                        model,
                        frame_bytes[: options.latency_frames],
                        cells=[Cell(0.020, 10)],
                        frames_prefix=stack.names.frames_prefix,
                        on_progress=phase(f"{precision}: handler at added latency, 1 thread"),
                    )
                    del model
                    update = phase(f"{precision}: cold start")
                    model_uri = upload_model(stack, model_dirs[precision], version=f"perf-{precision}")
                    environment = child_environment(server.endpoint_url, model_uri, stack.names.table)
                    runs = []
                    for attempt in range(options.cold_starts):
                        update("fresh process", attempt, options.cold_starts)
                        uploads = upload_frames(
                            stack.client("s3"),
                            stack.names.bucket,
                            f"{stack.names.frames_prefix}cold-{precision}-{attempt}/",
                            frame_bytes[:1],
                        )
                        event = s3_sqs_events(stack.names.bucket, uploads, 1)[0]
                        runs.append(
                            cold_start_once(
                                environment,
                                event,
                                config.work_dir / "logs" / f"perf-cold-{precision}-{attempt}.log",
                            )
                        )
                    results["paths"][precision]["cold_start"] = summarize_cold_starts(runs)

            if options.guard:
                phase("int8 guard with and without reduce_range")
                results["int8_guard"] = guard_with_and_without_reduce_range(
                    train_root,
                    backbone_paths(config)["fp32"],
                    config.cache_dir / "perf-guard-cache",
                    seed=config.seed,
                )

            phase("pricing")
            harness = config.out_dir / "results.json"
            peaks = {}
            if harness.is_file():
                harness_paths = json.loads(harness.read_text()).get("paths", {})
                peaks = {
                    p: harness_paths[p]["peak_rss_mib"]
                    for p in PRECISIONS
                    if harness_paths.get(p, {}).get("peak_rss_mib")
                }
            results["pricing"] = price(results, cpus, peaks)
            progress.update(task, description="perf: done", completed=1, total=1)

    except BaseException:
        # Keep what was measured: a late failure must not throw away minutes of figures.
        config.out_dir.mkdir(parents=True, exist_ok=True)
        (config.out_dir / "perf-partial.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        raise

    harness = config.out_dir / "results.json"
    if harness.is_file():
        results["handler_comparison"] = a_over_c(json.loads(harness.read_text()))
    results["targets"] = targets(results)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["duration_s"] = round(time.perf_counter() - started, 1)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    (config.out_dir / "perf.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    write_section(config.out_dir / "results.md", render_markdown(results))
    console.print(render_markdown(results, headline_only=True))
    return results


def run_all(
    config: BenchConfig,
    options: PerfOptions = PerfOptions(),
    *,
    harness: bool = True,
    perf: bool = True,  # noqa: B008
) -> dict[str, Any]:
    """`camsort bench`: the handler comparison (bench.harness), then the issue-10 phases."""
    from bench.harness import run_bench

    out: dict[str, Any] = {}
    if harness:
        out["harness"] = run_bench(config)
    if perf:
        out["perf"] = run_perf(config, options)
    return out


# --- derived figures (pure) ---------------------------------------------------------------------


def price(results: dict[str, Any], cpus: int, peak_rss_mib: dict[str, float] | None = None) -> dict[str, Any]:
    """Cost per million frames for each precision at 20 ms added latency, and the recommendation.

    Options: the measured cells at the function's threads (batch 1 and 10) and the measured
    one-thread cell (batch 10), priced at the memory that gives that many vCPUs.
    """
    from bench.pricing import Option, cost_per_million, memory_for_vcpus, recommend

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
                o.seconds_per_batch, o.batch_size, memory_for_vcpus(o.threads, peak), arch
            ).as_dict()
            for o in options
            for arch in ("arm64", "x86")
        }
        out[precision] = {
            "options": [o.__dict__ for o in options],
            "usd_per_million": costs,
            "recommendation": recommend(options, peak, "arm64"),
            "recommendation_without_tags": recommend(options, peak, "arm64", write_tags=False),
        }
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


# --- markdown -------------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if cell is None else str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(results: dict[str, Any], headline_only: bool = False) -> str:
    machine = results["machine"]
    load = f"load average {machine.get('load_average_at_start')} at start, {machine.get('load_average_at_end')} at end"
    headline = _table(
        ["target", "measured", "limit", "met"],
        [
            [
                t["target"],
                t["value"],
                t["limit"],
                {True: "yes", False: "**no**", None: "not measured"}[t["met"]],
            ]
            for t in results["targets"]
        ],
    )
    if headline_only:
        return headline
    parts = [
        "## Performance (issue 10)",
        f"{results['created_at']}, {machine['cpu_model']} ({', '.join(machine['cpu_flags'])}), "
        f"{results['threads']} threads, onnxruntime {machine['onnxruntime']}; {load}. "
        "A shared machine: absolute figures are from a loaded CPU; compare ratios within this run.",
        "### Targets",
        headline,
        "### GEMM limit (onnxruntime, best of 5; median beside it)",
        _table(
            ["kernel", "threads", "GFLOP/s (best)", "GFLOP/s (median)"],
            [
                [k, results["gemm"]["threads"], v["gflops"], v["median_gflops"]]
                for k, v in results["gemm"]["rates"].items()
            ]
            + [[k, 1, v["gflops"], v["median_gflops"]] for k, v in results["gemm"]["rates_1_thread"].items()],
        ),
    ]
    for precision, path in results["paths"].items():
        vs = path["inference_vs_gemm"]
        parts += [
            f"### {precision}: inference against the limit ({path['gflop_per_frame']} GFLOP per frame)",
            f"Baseline {path['sweep']['baseline']}: {vs['baseline']['achieved_gflops']} GFLOP/s = "
            f"{vs['baseline']['fraction']} of {vs['gemm']}; best {path['sweep']['best']}: "
            f"{vs['best']['achieved_gflops']} GFLOP/s = {vs['best']['fraction']} "
            f"(x{path['sweep']['speedup_over_baseline']} over the baseline, session load "
            f"{path['sweep']['extra_session_load_s']:+} s).",
            _table(
                ["options", "ms / frame", "session load s"],
                [[r["config"], r["ms_per_frame"], r["session_load_s"]] for r in path["sweep"]["rows"]],
            ),
        ]
        if "latency" in path:
            parts += [
                f"#### {precision}: handler at added latency (per frame)",
                _table(
                    [
                        "cell",
                        "wall ms",
                        "compute ms",
                        "wall / compute",
                        "invocation p50 ms",
                        "AWS calls / frame",
                    ],
                    [
                        [
                            name,
                            c["wall_per_frame_ms"],
                            c["compute_per_frame_ms"],
                            c["wall_over_compute"],
                            c["invocation"]["p50_ms"],
                            c["aws_calls_per_frame"],
                        ]
                        for name, c in [
                            *path["latency"].items(),
                            *((f"{k} (1 thread)", v) for k, v in path.get("latency_1_thread", {}).items()),
                        ]
                    ],
                ),
            ]
        if "cold_start" in path:
            cold = path["cold_start"]
            parts += [
                f"#### {precision}: cold start (median {cold['median_s']} s; runs {cold['runs_s']})",
                _table(["phase", "s (median)"], [[k, v] for k, v in cold["phases_median_s"].items()]),
            ]
    if "int8_guard" in results:
        guard = results["int8_guard"]
        parts += [
            f"### int8 guard with and without reduce_range (this CPU's int8 kernels: {guard['int8_kernels']}, {guard['frames']} frames)",
            _table(
                ["reduce_range", "passed", "agreement", "ROC-AUC fp32", "ROC-AUC int8"],
                [
                    [
                        rr,
                        g["passed"],
                        round(g["agreement"], 4),
                        round(g["roc_auc_fp32"], 4),
                        round(g["roc_auc_int8"], 4),
                    ]
                    for rr, g in ((False, guard["reduce_range_false"]), (True, guard["reduce_range_true"]))
                ],
            ),
        ]
    for precision, priced in results.get("pricing", {}).items():
        rec = priced["recommendation"]
        parts += [
            f"### {precision}: cost per million frames (estimate from this CPU, 20 ms added latency)",
            _table(
                ["option", "Lambda compute", "Lambda requests", "S3", "DynamoDB", "SQS", "total $"],
                [
                    [
                        k,
                        v["lambda_compute"],
                        v["lambda_requests"],
                        v["s3"],
                        v["dynamodb"],
                        v["sqs"],
                        v["total"],
                    ]
                    for k, v in priced["usd_per_million"].items()
                ],
            ),
            f"Recommended: {rec['memory_mb']} MB, {rec['onnx_threads']} onnxruntime thread(s), batch {rec['batch_size']}, "
            f"arm64: ${rec['usd_per_million']['total']} per million frames, {rec['rekognition_ratio']}x below "
            f"Rekognition DetectLabels ($1,000 per million); without object tags "
            f"${priced['recommendation_without_tags']['usd_per_million']['total']}.",
        ]
    return "\n\n".join(parts) + "\n"


def write_section(path: Path, section: str) -> None:
    """Put ``section`` between the perf markers of ``path`` (appended the first time)."""
    text = path.read_text() if path.is_file() else ""
    block = f"{START_MARK}\n{section}{END_MARK}\n"
    if START_MARK in text and END_MARK in text:
        before, _, rest = text.partition(START_MARK)
        _, _, after = rest.partition(END_MARK)
        text = before + block + after.lstrip("\n")
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "") + block
    path.write_text(text)
