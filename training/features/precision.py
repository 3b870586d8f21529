"""Which precision ships: the int8 backbone, the choice between it and fp32, its record.

``calibration_indices`` picks the seeded calibration frames, ``cached_int8_backbone`` quantizes
the fp32 backbone once per (backbone, calibration frames, onnxruntime version),
``choose_precision`` applies ``--precision`` and the int8 guard, and ``quantization_summary``
is what the manifest records of it. Used by ``training.sources.Frames``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from functions.frames.manifest import sha256_file
from training.fit.thresholds import GuardResult


def calibration_indices(n: int, size: int, seed: int) -> np.ndarray:
    """A seeded sample of the training frames, in frame order."""
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(size, n), replace=False))


def cached_int8_backbone(
    fp32_path: Path, calibration_pixels: np.ndarray, calibration_sha256s: list[str], cache_dir: Path
) -> Path:
    """Quantize once per (fp32 backbone, calibration frames, onnxruntime version)."""
    import onnxruntime

    from export.quantize import quantize_backbone_in_child

    key = hashlib.sha256(
        json.dumps(
            {
                "fp32": sha256_file(fp32_path),
                "calibration": calibration_sha256s,
                "onnxruntime": onnxruntime.__version__,
            }
        ).encode()
    ).hexdigest()[:16]
    target = cache_dir / "int8" / f"{fp32_path.stem}-int8-{key}.onnx"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    try:
        quantize_backbone_in_child(fp32_path, staged, calibration_pixels)
        os.replace(staged, target)
    finally:
        staged.unlink(missing_ok=True)
    return target


def choose_precision(requested: str, guard: GuardResult | None) -> tuple[str, str]:
    if requested == "fp32":
        return "fp32", "fp32 requested (--precision fp32); int8 not considered"
    assert guard is not None
    if requested == "int8":
        verdict = "passed" if guard.passed else "FAILED"
        return "int8", f"int8 requested (--precision int8); the guard {verdict}: {guard.reason}"
    if guard.passed:
        return "int8", f"the int8 guard passed: {guard.reason}"
    return "fp32", f"the int8 guard failed ({guard.reason}), so the fp32 backbone ships"


def quantization_summary(requested, shipped, reason, guard, calibration_size, n_frames) -> dict[str, Any]:
    summary: dict[str, Any] = {"requested": requested, "shipped": shipped, "decision": reason}
    if guard is None:
        return summary
    return {
        **summary,
        "method": "static QDQ, per-channel, uint8 activations / int8 weights (onnxruntime)",
        "calibration_frames": min(calibration_size, n_frames),
        "guard": guard.to_dict(),
    }
