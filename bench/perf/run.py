"""Issue 10's bench phases, in one run on this machine: the limit, the options, the network, the price.

Phases (each shows progress), per handler precision (fp32 = (b), int8 = (c)):

1. GEMM limit: fp32 / int8 GEMM rates in onnxruntime at the function's threads (bench.perf.gemm);
2. model FLOPs and the onnxruntime option sweep (bench.perf.ort_sweep): inference as a fraction
   of the limit, the best option and what it cost;
3. latency: the handler through the faults proxy at 0 and 20 ms added latency, batch 1 and
   10 (bench.perf.latency), wall vs compute per frame, plus a forced duplicate look-up cell;
   then what camera health adds per frame against the model call (bench.perf.health_cost);
4. cold start, phase by phase, in fresh processes (bench.perf.coldstart);
5. the int8 guard with and without reduce_range (bench.perf.int8_guard);
6. price per million frames and the memory / batch recommendation (bench.perf.pricing).

Writes ``perf.json`` and the "Performance" section of ``results.md`` (between markers, so the
handler comparison written by ``bench.harness`` stays). The figures derived from the results
(price, a / c, targets) are bench.perf.figures'; the markdown is bench.perf.markdown's.
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

from bench.config import BenchConfig
from bench.inputs import backbone_paths, bench_frames, ensure_model, training_set
from bench.perf.figures import a_over_c, batching_tradeoff, price, targets
from bench.perf.machine import machine_info
from bench.perf.markdown import bill_section, latency_section, render_markdown, write_section

PRECISIONS = ("fp32", "int8")
GEMM_KIND = {"fp32": "fp32_matmul", "int8": "int8_qlinearmatmul"}


@dataclass(frozen=True)
class PerfOptions:
    latency_frames: int = 30
    sweep_frames: int = 20
    cold_starts: int = 3
    guard: bool = True


def run_perf(config: BenchConfig, options: PerfOptions = PerfOptions(), console=None) -> dict[str, Any]:  # noqa: B008
    from rich.console import Console

    from bench.perf.int8_guard import guard_with_and_without_reduce_range
    from functions.frames.image_loader import load_image
    from functions.frames.model import available_cpus

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
    try:
        with _PhaseProgress(console) as phase:
            frames = bench_frames(config)
            train_root = training_set(config)
            model_dirs = {p: ensure_model(config, p, train_root) for p in PRECISIONS}
            frame_bytes = [frame.read() for frame in frames]
            sweep_pixels = np.stack(
                [load_image(data, source="bench") for data in frame_bytes[: options.sweep_frames]]
            )
            _measure_inference(results, model_dirs, sweep_pixels, cpus, phase)
            phase("camera health: added per-frame cost against the model call (int8)")
            results["camera_health"] = _measure_health(config, model_dirs["int8"], sweep_pixels, cpus)
            _measure_handler(config, options, results, model_dirs, frame_bytes, cpus, phase)
            if options.guard:
                phase("int8 guard with and without reduce_range")
                results["int8_guard"] = guard_with_and_without_reduce_range(
                    train_root,
                    backbone_paths(config)["fp32"],
                    config.cache_dir / "perf-guard-cache",
                    seed=config.seed,
                )
            phase("pricing")
            results["pricing"] = price(results, cpus, _harness_peaks(config))
            results["batching_tradeoff"] = batching_tradeoff(results)
            phase.done()
    except BaseException:
        # Keep what was measured: a late failure must not throw away minutes of figures.
        config.out_dir.mkdir(parents=True, exist_ok=True)
        (config.out_dir / "perf-partial.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        raise
    _write_results(config, results, started)
    console.print(render_markdown(results, headline_only=True))
    # Upload to result (measured, then modelled for AWS), then the bill, line by line.
    console.print("\n\n".join(latency_section(results)), markup=False, soft_wrap=True)
    console.print("\n\n".join(bill_section(results)), markup=False, soft_wrap=True)
    return results


class _PhaseProgress:
    """One progress line whose description names the running phase: ``phase(name)`` starts one
    and returns its ``update(step, done, total)`` callback."""

    def __init__(self, console: Any) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        self.progress = Progress(*columns, console=console)

    def __enter__(self) -> _PhaseProgress:
        self.progress.__enter__()
        self.task = self.progress.add_task("perf: frames and models", total=None)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, description: str) -> Any:
        def update(step: str, done: int, total: int) -> None:
            self.progress.update(
                self.task, description=f"{description}: {step}", completed=done, total=total or None
            )

        self.progress.update(self.task, description=description, completed=0, total=None)
        return update

    def done(self) -> None:
        self.progress.update(self.task, description="perf: done", completed=1, total=1)


def _measure_inference(
    results: dict[str, Any], model_dirs: dict[str, Path], sweep_pixels: np.ndarray, cpus: int, phase: Any
) -> None:
    """The GEMM limit, then each model's onnxruntime option sweep as a fraction of it."""
    from bench.perf.gemm import fraction_of_limit, gemm_rates, model_flops
    from bench.perf.ort_sweep import run_sweep

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


def _measure_health(config: BenchConfig, model_dir: Path, pixels: np.ndarray, cpus: int) -> dict[str, Any]:
    """The added cost per frame, how much defocus the 224 array shows, detection on `synth --tamper`."""
    from bench.perf.health_cost import defocus_ratios, detection_on_synthetic, health_cost
    from functions.frames.model import ModelSession
    from training.data.scene_tamper import view_frame

    return health_cost(ModelSession.open(str(model_dir), threads=cpus), pixels) | {
        "defocus_sharpness_ratio_by_radius_px": defocus_ratios(
            [view_frame(1000 + index, "empty", 0) for index in range(8)]
        ),
        "detection": detection_on_synthetic(config.work_dir / "camera-health"),
    }


def _measure_handler(
    config: BenchConfig,
    options: PerfOptions,
    results: dict[str, Any],
    model_dirs: dict[str, Path],
    frame_bytes: list[bytes],
    cpus: int,
    phase: Any,
) -> None:
    """The handler against a moto server at added latency (all threads, then one), and cold starts."""
    from bench.perf.latency import Cell, deployed_settings, run_cells
    from functions.frames.model import ModelSession
    from infra.deploy.topology import StackNames
    from infra.local.moto_server import LOCAL_AWS_ENV, MotoServer
    from infra.local.stack import create_local_stack

    with MotoServer(log_path=config.work_dir / "perf-moto.log") as server:
        for name, value in LOCAL_AWS_ENV.items():
            os.environ.setdefault(name, value)
        stack = create_local_stack(server.endpoint_url, StackNames.for_stage("perf"))
        frames = frame_bytes[: options.latency_frames]
        for precision in PRECISIONS:
            path = results["paths"][precision]
            model = ModelSession.open(str(model_dirs[precision]), threads=cpus)
            # The deployed function's settings (state, review, bus: what the first table's handler
            # runs), pinned to the model it runs.
            table = (server.endpoint_url, stack.names.bucket, deployed_settings(stack, model.sha256))
            path["latency"] = run_cells(
                *table,
                model,
                frames,
                on_progress=phase(f"{precision}: handler at added latency"),
            )
            del model
            # One vCPU's worth of Lambda (1,769 MB) runs one onnxruntime thread: measured, not derived.
            model = ModelSession.open(str(model_dirs[precision]), threads=1)
            one_thread = phase(f"{precision}: handler at added latency, 1 thread")
            path["latency_1_thread"] = run_cells(
                *table, model, frames, cells=[Cell(0.020, 10)], on_progress=one_thread
            )
            del model
            update = phase(f"{precision}: cold start")
            path["cold_start"] = _cold_starts(
                config, options, stack, model_dirs[precision], precision, frame_bytes, update
            )
        phase("requests per frame through the whole local system (default: tags off; then tags on)")
        results.update(_measure_requests(config, server.endpoint_url, model_dirs["int8"]))
        phase("upload-to-result latency through the whole local system (steady, burst)")
        from bench.perf.upload_latency import measure_upload_to_result

        results["upload_to_result"] = measure_upload_to_result(
            server.endpoint_url, model_dirs["int8"], config.work_dir / "upload-latency", seed=config.seed
        )


def _measure_requests(config: BenchConfig, endpoint_url: str, model_dir: Path) -> dict[str, Any]:
    """Every request of the default configuration, counted (bench.requests), and again with tags on."""
    from bench.requests import measure_requests
    from functions import env

    work = config.work_dir / "requests"
    return {
        "requests": measure_requests(endpoint_url, model_dir, work, seed=config.seed),
        "requests_with_tags": measure_requests(
            endpoint_url, model_dir, work, seed=config.seed, extra_environment={env.WRITE_TAGS: "true"}
        ),
    }


def update_bill(config: BenchConfig, model_dir: Path) -> dict[str, Any]:
    """Measure the requests alone and re-price the last run's perf.json (its timings stay as measured).

    For a machine too busy to time anything: request counts and memory do not depend on load.
    """
    from infra.local.moto_server import LOCAL_AWS_ENV, MotoServer

    perf_path = config.out_dir / "perf.json"
    results = json.loads(perf_path.read_text())
    config.work_dir.mkdir(parents=True, exist_ok=True)
    with MotoServer(log_path=config.work_dir / "bill-moto.log") as server:
        for name, value in LOCAL_AWS_ENV.items():
            os.environ.setdefault(name, value)
        results.update(_measure_requests(config, server.endpoint_url, model_dir))
    results["pricing"] = price(results, results["threads"], _harness_peaks(config))
    results["batching_tradeoff"] = batching_tradeoff(results)
    results["targets"] = targets(results)
    perf_path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    write_section(config.out_dir / "results.md", render_markdown(results))
    from rich.console import Console

    Console().print("\n\n".join(bill_section(results)), markup=False, soft_wrap=True)
    return results


def _cold_starts(
    config: BenchConfig,
    options: PerfOptions,
    stack: Any,
    model_dir: Path,
    precision: str,
    frame_bytes: list[bytes],
    update: Any,
) -> dict[str, Any]:
    """``options.cold_starts`` fresh processes, each loading the model from S3 and classifying one frame."""
    from bench.perf.coldstart import child_environment, cold_start_once, summarize_cold_starts
    from bench.perf.latency import s3_sqs_events, upload_frames
    from functions.frames.manifest import read_manifest
    from infra.local.stack import upload_model

    model_uri = upload_model(stack, model_dir, version=f"perf-{precision}")
    environment = child_environment(
        stack.endpoint_url, model_uri, stack.names.table, read_manifest(model_dir).model_sha256
    )
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
        log_path = config.work_dir / "logs" / f"perf-cold-{precision}-{attempt}.log"
        runs.append(cold_start_once(environment, event, log_path))
    return summarize_cold_starts(runs)


def _harness_peaks(config: BenchConfig) -> dict[str, Any]:
    """Peak RSS per path from the harness's results.json of this run, where it ran first."""
    harness = config.out_dir / "results.json"
    if not harness.is_file():
        return {}
    harness_paths = json.loads(harness.read_text()).get("paths", {})
    return {
        p: harness_paths[p]["peak_rss_mib"]
        for p in PRECISIONS
        if harness_paths.get(p, {}).get("peak_rss_mib")
    }


def _write_results(config: BenchConfig, results: dict[str, Any], started: float) -> None:
    harness = config.out_dir / "results.json"
    if harness.is_file():
        results["handler_comparison"] = a_over_c(json.loads(harness.read_text()))
    results["targets"] = targets(results)
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["duration_s"] = round(time.perf_counter() - started, 1)
    config.out_dir.mkdir(parents=True, exist_ok=True)
    (config.out_dir / "perf.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    write_section(config.out_dir / "results.md", render_markdown(results))


def run_all(
    config: BenchConfig,
    options: PerfOptions = PerfOptions(),
    *,
    harness: bool = True,
    perf: bool = True,  # noqa: B008
    decode_memory: bool = True,
    regions: bool = True,
) -> dict[str, Any]:
    """`camsort bench`: the handler comparison (bench.harness), the decode memory of crafted
    frames (bench.decode_memory), the cost of regions (bench.perf.regions), then the issue-10 phases."""
    from bench.decode_memory import run_decode_memory
    from bench.harness import run_bench
    from bench.perf.regions import run_region_cost

    out: dict[str, Any] = {}
    if harness:
        out["harness"] = run_bench(config)
    if decode_memory:  # after the harness: it rewrites results.md, this adds its own section
        out["decode_memory"] = run_decode_memory(config.out_dir)
    if regions:  # likewise: its own section of results.md
        out["regions"] = run_region_cost(config)
    if perf:
        out["perf"] = run_perf(config, options)
    return out
