"""`make bench`: the notebook way (a) vs our handler path, fp32 (b) and int8 (c), in one run.

What one run does, in order (all on this machine, so the ratios are same-machine):

1. frames: 200 synthetic 1280x720 JPEG bench frames and a separate synthetic training set
   (both cached under ``.cache/bench``; the same seed gives the same bytes);
2. models: ``training.pipeline.train`` once per precision (fp32, int8) on the training set,
   random-init weights unless told otherwise, cached;
3. training featurization throughput: the training frames through each backbone (Keras
   ``predict`` for (a), onnxruntime for (b) and (c)); (a)'s features also train the
   notebook's LightGBM Booster;
4. Lambda package size (``infra.deploy.package``) and, for (a), the installed size of its
   dependency closure;
5. a moto server on 127.0.0.1 with the real topology (``infra.local.stack``); the models
   are uploaded to its bucket, as deployed. For each path the frames are uploaded under
   fresh keys, the S3 -> SQS notifications moto emits are collected and wrapped into
   Lambda-shaped SQS events (batch 1 and batch 10), and a fresh child process per path
   (``bench.runner``) times them: cold start, warm latency, throughput, per-stage split,
   peak RSS. Every frame's DynamoDB item is checked afterwards: a path whose frames did not
   all end as ``ok`` results is an error, never a figure;
6. results.json + results.md (markdown tables) + the rich tables on the terminal.

Where each stage lives: :mod:`bench.config`, :mod:`bench.inputs` (1, 2), :mod:`bench.featurization`
(3), :mod:`bench.perf.package_size` (4), :mod:`bench.staging`, :mod:`bench.child`, :mod:`bench.path_run`
(5), :mod:`bench.summary`, :mod:`bench.perf.machine`, :mod:`bench.report` and :mod:`bench.report_tables` (6).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.config import PRECISIONS, REFERENCE_DISTRIBUTIONS, SCHEMA_VERSION, WEIGHTS_NOTE, BenchConfig
from bench.featurization import onnx_featurization, reference_featurization
from bench.inputs import BenchFrame, backbone_paths, bench_frames, ensure_model, training_files, training_set
from bench.path_run import run_path
from bench.perf.machine import machine_info
from bench.perf.package_size import handler_package_mib, installed_closure_mib
from bench.report import REFERENCE
from bench.shadow import shadow_stage
from bench.staging import collect_test_event
from bench.summary import add_titles, summarize_draft


def run_bench(config: BenchConfig = BenchConfig(), console=None) -> dict[str, Any]:  # noqa: B008 - frozen
    """The whole bench; writes results.json and results.md under ``config.out_dir``."""
    from rich.console import Console

    config.validate()
    console = console or Console()
    started = time.perf_counter()
    config.work_dir.mkdir(parents=True, exist_ok=True)
    results = new_results(config)
    with bench_progress(console) as progress:
        task = progress.add_task("frames", total=None)
        inputs = prepare_inputs(config, progress, task)
        measure_featurization(config, inputs, results, progress, task)
        measure_package(config, results, progress, task)
        progress.update(task, description="preparation done", completed=1, total=1)
        measure_paths(config, inputs, results, progress)
        progress.update(task, description="shadow scoring: the int8 model beside the fp32 one")
        shadow_stage(inputs.model_dirs, results)
    finish(results, started)
    write_results(config, results, console)
    return results


@dataclass(frozen=True)
class BenchInputs:
    frames: list[BenchFrame]
    train_root: Path
    model_dirs: dict[str, Path]  # precision -> model directory
    reference_dir: Path  # the notebook way's Booster, trained by measure_featurization


def new_results(config: BenchConfig) -> dict[str, Any]:
    """The results document before any measurement: schema, machine, settings, notes."""
    results: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine_info(),
        "settings": {
            key: str(value) if isinstance(value, Path) else value for key, value in asdict(config).items()
        },
        "paths": {},
        "notes": [WEIGHTS_NOTE.format(weights=config.weights)],
    }
    if results["machine"]["load_average_at_start"][0] > 0.5 * results["machine"]["cpus"]:
        results["notes"].append(
            f"load average {results['machine']['load_average_at_start']} at start: other work was running, "
            "the timings are noisy"
        )
    return results


@contextmanager
def bench_progress(console) -> Iterator[Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        yield progress


def prepare_inputs(config: BenchConfig, progress, task) -> BenchInputs:
    """Frames, the training set and one model per precision (cached, else made now)."""
    frames = bench_frames(config)
    train_root = training_set(config)
    model_dirs = {}
    for precision in PRECISIONS:
        progress.update(
            task, description=f"{precision} model (cached; else trained, log in {config.work_dir})"
        )
        model_dirs[precision] = ensure_model(config, precision, train_root)
    return BenchInputs(frames, train_root, model_dirs, reference_dir=config.work_dir / "reference")


def measure_featurization(
    config: BenchConfig, inputs: BenchInputs, results: dict[str, Any], progress, task
) -> None:
    """Training featurization throughput of each path (and (a)'s Booster, which its runs need)."""
    from functions.frames.image_loader import load_image

    progress.update(task, description="training featurization throughput")
    files = training_files(inputs.train_root)
    if REFERENCE in config.paths:
        results["paths"].setdefault(REFERENCE, {})["featurization_fps"] = reference_featurization(
            config, inputs.train_root, inputs.reference_dir
        )
    pixels = np.stack([load_image(path.read_bytes(), source=str(path)) for path, _ in files])
    backbones = backbone_paths(config)
    for precision in PRECISIONS:
        if precision in config.paths:
            figures = onnx_featurization(config, backbones[precision], pixels)
            results["paths"].setdefault(precision, {}).update(
                featurization_fps=figures["steady_fps"],
                featurization_end_to_end_fps=figures["end_to_end_fps"],
            )


def measure_package(config: BenchConfig, results: dict[str, Any], progress, task) -> None:
    """The Lambda artifact's size for (b)/(c); the dependency closure's for (a)."""
    if not config.package:
        return
    progress.update(task, description="Lambda package size")
    package_mib, note = handler_package_mib(config)
    results["notes"].append(note)
    for precision in PRECISIONS:
        results["paths"].setdefault(precision, {})["package_mib"] = package_mib
    results["paths"].setdefault(REFERENCE, {})["package_mib"] = installed_closure_mib(REFERENCE_DISTRIBUTIONS)
    results["notes"].append(
        "(a)'s package: installed size of "
        + ", ".join(REFERENCE_DISTRIBUTIONS)
        + " and their dependencies in this venv (TensorFlow alone is over Lambda's 250 MB zip limit)."
    )


def measure_paths(config: BenchConfig, inputs: BenchInputs, results: dict[str, Any], progress) -> None:
    """Each path on a fresh moto stack with the models uploaded, as deployed."""
    from infra.deploy.topology import StackNames
    from infra.local.moto_server import MotoServer
    from infra.local.stack import create_local_stack, upload_model

    with MotoServer(log_path=config.work_dir / "moto.log") as server:
        stack = create_local_stack(server.endpoint_url, StackNames.for_stage("bench"))
        collect_test_event(stack)
        model_uris = {
            precision: upload_model(stack, inputs.model_dirs[precision], version=f"bench-{precision}")
            for precision in PRECISIONS
        }
        for path in config.paths:
            measured = run_path(
                config, stack, path, inputs.frames, model_uris.get(path), inputs.reference_dir, progress
            )
            results["paths"].setdefault(path, {}).update(measured)


def finish(results: dict[str, Any], started: float) -> None:
    """The cross-path figures (draft), the load at the end, the duration, the titles."""
    draft = summarize_draft(results["paths"])
    if draft:
        results["draft"] = draft
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["duration_s"] = round(time.perf_counter() - started, 1)
    add_titles(results)


def write_results(config: BenchConfig, results: dict[str, Any], console) -> None:
    """results.json, results.md and the rich tables."""
    from bench.report_tables import render_markdown, rich_split_table, rich_table, rich_targets_table
    from bench.shadow import shadow_markdown

    config.out_dir.mkdir(parents=True, exist_ok=True)
    (config.out_dir / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    (config.out_dir / "results.md").write_text(render_markdown(results) + shadow_markdown(results))
    console.print(rich_table(results))
    console.print(rich_split_table(results))
    console.print(rich_targets_table(results))
    console.print(f"wrote {config.out_dir / 'results.json'} and {config.out_dir / 'results.md'}")
