"""What onnxruntime's options buy on this CPU: one option changed at a time from the function's.

The function's settings (``functions.frames.model.session_options``): graph optimization ALL,
intra-op threads = the CPUs it may use, onnxruntime's default spinning, one batch per
invocation. From there the sweep varies, one at a time: optimization level (BASIC, EXTENDED,
ALL: ALL adds the CPU-specific layout transforms, e.g. NHWC for quantized convolutions),
threads (1 .. CPUs), spinning on/off, batch size. For each: session creation time (what it
costs at cold start) and inference time per frame on real decoded bench frames.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

LEVELS = ("BASIC", "EXTENDED", "ALL")
BATCH_SIZES = (1, 4, 10)


@dataclass(frozen=True)
class OrtConfig:
    level: str = "ALL"
    threads: int = 2
    allow_spinning: bool | None = None  # None: onnxruntime's default (on)
    batch_size: int = 10

    @property
    def name(self) -> str:
        spin = {None: "default", True: "on", False: "off"}[self.allow_spinning]
        return f"{self.level} t{self.threads} spin-{spin} b{self.batch_size}"


def sweep_configs(cpus: int, baseline: OrtConfig | None = None) -> list[OrtConfig]:
    """The baseline, then one option changed at a time (no duplicates)."""
    base = baseline or OrtConfig(threads=cpus)
    configs = [base]
    configs += [replace(base, level=level) for level in LEVELS]
    configs += [replace(base, threads=threads) for threads in range(1, cpus + 1)]
    configs += [replace(base, allow_spinning=spin) for spin in (True, False)]
    configs += [replace(base, batch_size=size) for size in BATCH_SIZES]
    unique: list[OrtConfig] = []
    for config in configs:
        if config not in unique:
            unique.append(config)
    return unique


def measure(model_path: Path, config: OrtConfig, pixels: np.ndarray, repeats: int = 2) -> dict[str, Any]:
    """Session creation seconds and median inference ms per frame over ``repeats`` passes."""
    import onnxruntime as ort

    from functions.frames.manifest import INPUT_NAME, PROBABILITIES_OUTPUT
    from functions.frames.model import session_options

    level = getattr(ort.GraphOptimizationLevel, f"ORT_ENABLE_{config.level}")
    began = time.perf_counter()
    session = ort.InferenceSession(
        str(model_path),
        sess_options=session_options(
            config.threads, optimization=level, allow_spinning=config.allow_spinning
        ),
        providers=["CPUExecutionProvider"],
    )
    load_s = time.perf_counter() - began
    batches = [pixels[i : i + config.batch_size] for i in range(0, len(pixels), config.batch_size)]
    session.run([PROBABILITIES_OUTPUT], {INPUT_NAME: batches[0]})  # warm-up
    per_pass = []
    for _ in range(repeats):
        began = time.perf_counter()
        for batch in batches:
            session.run([PROBABILITIES_OUTPUT], {INPUT_NAME: batch})
        per_pass.append((time.perf_counter() - began) / len(pixels))
    return {
        "config": config.name,
        "level": config.level,
        "threads": config.threads,
        "allow_spinning": config.allow_spinning,
        "batch_size": config.batch_size,
        "session_load_s": round(load_s, 3),
        "ms_per_frame": round(float(np.median(per_pass)) * 1000.0, 2),
    }


def run_sweep(
    model_path: Path,
    pixels: np.ndarray,
    cpus: int,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    configs = sweep_configs(cpus)
    rows = []
    for number, config in enumerate(configs):
        if on_progress:
            on_progress(config.name, number, len(configs))
        rows.append(measure(model_path, config, pixels))
    return summarize_sweep(rows)


def summarize_sweep(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The rows, the baseline (first row), the fastest, and what the fastest cost (pure)."""
    baseline = rows[0]
    best = min(rows, key=lambda row: row["ms_per_frame"])
    return {
        "rows": rows,
        "baseline": baseline["config"],
        "best": best["config"],
        "best_ms_per_frame": best["ms_per_frame"],
        "speedup_over_baseline": round(baseline["ms_per_frame"] / best["ms_per_frame"], 3),
        "extra_session_load_s": round(best["session_load_s"] - baseline["session_load_s"], 3),
    }
