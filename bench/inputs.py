"""The bench's cached inputs: frames, the training set, the models and their backbones.

Each is keyed by what decides its bytes (seed, size, the renderer's code, the weights), written
once under ``config.cache_dir`` and reused.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from bench.config import (
    BenchConfig,
    BenchError,
)
from bench.report import FP32, INT8
from functions.errors import CamsortError


@dataclass(frozen=True)
class BenchFrame:
    path: Path
    label: str

    def read(self) -> bytes:
        return self.path.read_bytes()


def bench_frames(config: BenchConfig) -> list[BenchFrame]:
    """The bench frames, labels in rotation, written once and reused (deterministic bytes)."""
    from training.data.synthetic import LABELS, frame_jpeg, frame_seed

    root = config.cache_dir / f"frames-{frames_tag(config)}"
    root.mkdir(parents=True, exist_ok=True)
    frames = []
    for index in range(config.frames):
        label = LABELS[index % len(LABELS)]
        path = root / f"frame-{index:05d}-{label}.jpg"
        if not path.is_file():
            # A seed space apart from the training set's, so no bench frame is a training frame.
            data = frame_jpeg(
                label, frame_seed(config.seed + 1_000_003, label, index), config.width, config.height
            )
            _atomic_write(path, data)
        frames.append(BenchFrame(path, label))
    return frames


def training_set(config: BenchConfig) -> Path:
    from training.data.synthetic import LABELS, write_dataset

    root = config.cache_dir / f"train-{training_tag(config)}"
    done = root / ".complete"
    if not done.is_file():
        write_dataset(
            root, config.train_per_label, seed=config.seed, width=config.width, height=config.height
        )
        done.write_text(json.dumps({label: config.train_per_label for label in LABELS}) + "\n")
    return root


def training_files(root: Path) -> list[tuple[Path, str]]:
    return [(path, path.parent.name) for path in sorted(root.glob("*/*.jpg"))]


@functools.cache
def renderer_fingerprint() -> str:
    """The frames' bytes depend on the renderer's code: a change there must not reuse the cache.

    Computed once per process, so one run uses one key throughout.
    """
    from training.data import synthetic

    return synthetic.renderer_source_digest()[:10]


def frames_tag(config: BenchConfig) -> str:
    return f"s{config.seed}-{config.width}x{config.height}-r{renderer_fingerprint()}"


def training_tag(config: BenchConfig) -> str:
    return f"n{config.train_per_label}-{frames_tag(config)}"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --- models ---------------------------------------------------------------------------------------


def model_dir_for(config: BenchConfig, precision: str) -> Path:
    return config.cache_dir / "models" / f"{precision}-{weights_tag(config.weights)}-{training_tag(config)}"


def weights_tag(weights: str) -> str:
    """Part of the model cache key: a different .h5 file must not reuse a cached model."""
    if weights in ("imagenet", "none"):
        return weights
    return "h5-" + hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:12]


def training_cache_dir(config: BenchConfig) -> Path:
    """The pipeline's backbone + feature cache for this bench configuration.

    One per (weights, training set): the int8 backbone is cached there under a key of its
    calibration frames, so this directory holds exactly the bench's backbones.
    """
    return config.cache_dir / "training-cache" / f"{weights_tag(config.weights)}-{training_tag(config)}"


def backbones_record(model_dir: Path) -> Path:
    """Beside the cached model (not in it: the model directory is what gets uploaded)."""
    return model_dir.with_name(f"{model_dir.name}.backbones.json")


def ensure_model(config: BenchConfig, precision: str, train_root: Path) -> Path:
    """The bench's model for ``precision``, trained once by the real pipeline and cached.

    The pipeline's own output (steps, CV table) goes to ``work_dir/train-<precision>.log``;
    the backbones it names in its result are recorded beside the model (:func:`backbone_paths`).
    """
    from rich.console import Console

    from functions.frames.manifest import load_verified
    from training.pipeline import Frames, SingleLabel, TrainSettings, train

    out_dir = model_dir_for(config, precision)
    try:
        load_verified(out_dir)
        _recorded_backbones(out_dir)
        return out_dir
    except CamsortError:
        pass  # not trained yet (or damaged, or trained before backbones were recorded): train it
    if out_dir.exists():
        shutil.rmtree(out_dir)
    config.work_dir.mkdir(parents=True, exist_ok=True)
    with open(config.work_dir / f"train-{precision}.log", "w") as log:
        result = train(
            SingleLabel(),
            Frames([str(train_root)]),
            out_dir,
            TrainSettings(
                weights=config.weights,
                seed=config.seed,
                precision=precision,
                cache_dir=training_cache_dir(config),
                progress=False,  # the bench's own progress bar is live; rich allows one at a time
            ),
            console=Console(file=log, width=120),
        )
    _atomic_write(
        backbones_record(out_dir),
        json.dumps({name: str(path) for name, path in result.backbones.items()}, indent=2).encode(),
    )
    load_verified(out_dir)
    return out_dir


def _recorded_backbones(model_dir: Path) -> dict[str, Path]:
    record = backbones_record(model_dir)
    try:
        backbones = {name: Path(path) for name, path in json.loads(record.read_text()).items()}
    except (OSError, ValueError, AttributeError) as exc:
        raise BenchError(f"{record}: no readable record of the backbones ({exc})") from exc
    missing = [str(path) for path in backbones.values() if not path.is_file()]
    if missing:
        raise BenchError(f"{record}: the recorded backbone(s) {', '.join(missing)} are gone")
    return backbones


def backbone_paths(config: BenchConfig) -> dict[str, Path]:
    """The fp32 and int8 backbones the pipeline trained the bench's models with (as its results named them)."""
    try:
        return {
            FP32: _recorded_backbones(model_dir_for(config, FP32))[FP32],
            INT8: _recorded_backbones(model_dir_for(config, INT8))[INT8],
        }
    except (BenchError, KeyError) as exc:
        raise BenchError(
            f"{exc}; delete {config.cache_dir / 'models'} and run `camsort bench` again"
        ) from exc
