"""What camera health adds to a frame, as a ratio to the model call it rides beside.

Per frame the function measures the decoded 224 x 224 array (``functions.frames.image_health``:
luma, its mean and deviation, the Laplacian's variance, a 16 x 16 dhash) and, in the state
batch, compares it with the camera's reference (``functions.state.camera_health.observe``).
Both are timed here on the bench's frames, interleaved with the model's batch-10 call
(``ModelSession.predict``) on the same frames and threads, so the ratio is of one run on one
machine. The state item's size with and without health is measured too: health rides in the
state write the camera makes anyway, so it costs no request, only bytes of that item.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np


def health_cost(model: Any, pixels: np.ndarray, *, rounds: int = 5, batch: int = 10) -> dict[str, Any]:
    """Median per-frame milliseconds of the model call and of the health measures and step."""
    from functions.frames.image_health import measure
    from functions.state.camera_health import Health, HealthConfig, observe

    frames = pixels[:batch]
    if len(frames) < batch:
        raise ValueError(f"need {batch} frames, got {len(frames)}")
    config = HealthConfig()
    model.predict(frames)  # warm
    model_ms, measure_ms, step_ms = [], [], []
    health = Health()
    for _ in range(rounds):
        started = time.perf_counter()
        model.predict(frames)
        model_ms.append((time.perf_counter() - started) * 1000 / batch)
        started = time.perf_counter()
        measures = [measure(frame) for frame in frames]
        measure_ms.append((time.perf_counter() - started) * 1000 / batch)
        started = time.perf_counter()
        for index, measured in enumerate(measures):
            at = f"2026-11-22T12:00:{index:02d}.000Z"
            health = observe(health, "cam-bench", measured, at, f"k{index}", config).health
        step_ms.append((time.perf_counter() - started) * 1000 / batch)
    model_median, measure_median, step_median = (
        statistics.median(v) for v in (model_ms, measure_ms, step_ms)
    )
    return {
        "model_precision": model.manifest.precision,
        "batch": batch,
        "rounds": rounds,
        "model_ms_per_frame": round(model_median, 3),
        "measure_ms_per_frame": round(measure_median, 3),
        "state_step_ms_per_frame": round(step_median, 3),
        "ratio_to_model": round((measure_median + step_median) / model_median, 4),
        "state_item_bytes": _state_item_bytes(pixels),
    }


def _state_item_bytes(pixels: np.ndarray) -> dict[str, int]:
    """A full window's state item, with and without the camera's health (bytes as DynamoDB bills)."""
    from bench.perf.pricing import dynamodb_item_bytes
    from functions.frames.image_health import measure
    from functions.state.camera_health import HealthConfig
    from functions.state.episodes import CameraState, advance_batch
    from functions.state.smoothing import Frame, Rule
    from functions.state.state_item import state_to_item

    frames = [
        Frame(
            f"2026-11-22T12:00:{index:02d}.000Z",
            f"camsort-frames-prod/frames/cam-01/20261122T1200{index:02d}000Z.jpg@{index:032x}",
            ("bus", "car", "empty", "unknown")[index % 4],
            0.8765,
        )
        for index in range(2 * Rule().keep)
    ]
    measures = {frame.key: measure(pixels[index % len(pixels)]) for index, frame in enumerate(frames)}
    sizes = {}
    for name, health in (("without_health", None), ("with_health", HealthConfig())):
        state = advance_batch(CameraState("cam-01"), frames, Rule(), measures, health).state
        sizes[name] = dynamodb_item_bytes(state_to_item(state, updated_at="2026-11-22T12:01:00.000Z"))
    return sizes


def detection_on_synthetic(
    work_dir: Path, *, frames: int = 60, seeds: tuple[int, ...] = (0, 1), width: int = 1280, height: int = 720
) -> dict[str, Any]:
    """Each tamper of ``camsort synth --tamper`` (five fixed views per seed, four tampered half-way)
    through the function's loader, the measures and the health step in capture order: time to
    detect per tamper and the false alarms in the healthy frames."""
    from functions.frames.image_health import measure
    from functions.frames.image_loader import load_image
    from functions.state.camera_health import Health, HealthConfig, observe
    from infra.demo.tamper import score
    from training.data.scene_tamper import write_tamper_set

    config, truth, changes = HealthConfig(), [], []
    for seed in seeds:
        root = work_dir / f"tamper-set-{seed}"
        written = write_tamper_set(root, frames=frames, seed=seed, width=width, height=height)
        health: dict[str, Health] = {}
        for frame in sorted(written["frames"], key=lambda f: (f["camera_id"], f["captured_at"])):
            camera = f"s{seed}-{frame['camera_id']}"
            pixels = load_image((root / frame["file"]).read_bytes(), source=frame["file"])
            step = observe(
                health.get(camera, Health()),
                camera,
                measure(pixels),
                frame["captured_at"],
                frame["file"],
                config,
            )
            health[camera] = step.health
            truth.append((camera, frame["captured_at"], frame["tamper"]))
            if step.change is not None:
                changes.append(step.change)
    figures = score(truth, changes).as_dict()
    return figures | {
        "cameras": len({c for c, _t, _x in truth}),
        "frames_per_camera": frames,
        "seeds": list(seeds),
    }


def defocus_ratios(pixels_1280: list[Any], radii: tuple[float, ...] = (1, 2, 3, 4, 6, 8)) -> dict[str, float]:
    """Median sharpness of a frame blurred by a Gaussian of each radius (pixels at 1280 x 720),
    measured at 224 x 224 through the function's loader, as a fraction of the sharp frame's: how
    much defocus the 224 array still shows (the defocus threshold is 0.25)."""
    import io

    from PIL import ImageFilter

    from functions.frames.image_health import measure
    from functions.frames.image_loader import load_image

    def sharpness(image: Any) -> float:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=85)
        return measure(load_image(buffer.getvalue(), source="bench")).sharpness

    sharp = [sharpness(image) for image in pixels_1280]
    return {
        str(radius): round(
            statistics.median(
                sharpness(image.filter(ImageFilter.GaussianBlur(radius))) / base
                for image, base in zip(pixels_1280, sharp, strict=True)
            ),
            3,
        )
        for radius in radii
    }
