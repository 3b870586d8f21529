"""The demo's region models ``bay`` and ``gate``: cached per recipe, trained on the default model's backbone.

``ensure_region_models`` returns them from the cache or trains them in this process.
``start_region_models`` trains them in a child process (``python -m infra.demo.region_models``)
while the cameras run: the cameras keep a real camera's pace, so the CPU is mostly idle then, and
the first run no longer waits ~10 s for the training after them (measured, docs/local-system.md).
``wait_for_region_models`` joins that child before the regions camera needs the models; if the
child failed, the models are trained in this process instead (its log is named on screen).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console

from functions.frames.manifest import MANIFEST_FILENAME, MODEL_FILENAME, load_verified, read_manifest
from infra import checkout_environment
from training.data.carpark import BAY_MODEL, GATE_MODEL
from training.data.synthetic import renderer_source_digest
from training.data.synthetic_regions import (
    CAMERAS_FILENAME,
    CARPARK_RENDERER_MODULES,
    LABELS_FILENAME,
    write_regions_dataset,
)

REGIONS_CAMERA = "lot-01"
REGION_MODELS = (BAY_MODEL, GATE_MODEL)
REGIONS_RECIPE_VERSION = 1


@dataclass(frozen=True)
class RegionsSettings:
    bays: int = 6  # + the gate: 7 regions
    train_frames: int = 30  # frames of the car park the two models train on (a crop per region each)
    live_frames: int = 24  # the sequence the function answers
    hold: tuple[int, int] = (4, 10)  # frames a region keeps its state in the sequence
    folds: int = 3
    seed: int = 0
    frame_interval_s: float = 5.0  # between the sequence's capture times
    # Frames per invocation for this camera: each model answers all crops of a batch in one
    # ONNX call, so 4 frames x 6 bays = 24 crops bound the call's activations (10 would be 60).
    batch_size: int = 4


def _key(settings: RegionsSettings, default_sha256: str) -> str:
    recipe = {
        "recipe": REGIONS_RECIPE_VERSION, "default_model": default_sha256, "frames": settings.train_frames,
        "folds": settings.folds, "seed": settings.seed, "bays": settings.bays,
        "renderer": renderer_source_digest(CARPARK_RENDERER_MODULES),
    }  # fmt: skip
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def ensure_region_models(
    settings: RegionsSettings, default_model: Path, cache_dir: Path, console: Console
) -> dict[str, Path]:
    """``bay`` and ``gate`` for this default model, from the cache or trained now on its backbone."""
    root = _models_root(settings, default_model, cache_dir)
    models = {name: root / name for name in REGION_MODELS}
    if _cached(root):
        for path in models.values():
            load_verified(path)
        console.print(f"[green]Using the cached region models[/] {root}")
        return models
    from training.backbone_source import ModelBackbone
    from training.pipeline import TrainSettings, train
    from training.tasks import RegionCrops

    data = Path(cache_dir) / "demo-region-data" / root.name
    shutil.rmtree(data, ignore_errors=True)
    write_regions_dataset(data, settings.train_frames, cameras=1, seed=settings.seed, bays=settings.bays)
    console.print(
        f"Training the region models {', '.join(REGION_MODELS)} on {settings.train_frames} frames of {REGIONS_CAMERA}, "
        f"on the default model's backbone (no second conversion, no fine-tuning)"
    )
    for name, path in models.items():
        staging = path.with_name(f".{name}.partial")
        shutil.rmtree(staging, ignore_errors=True)
        train(
            RegionCrops(
                regions=str(data / CAMERAS_FILENAME), labels_file=str(data / LABELS_FILENAME), model_name=name
            ),
            ModelBackbone([str(data)], str(default_model)),
            staging,
            TrainSettings(
                folds=settings.folds, seed=settings.seed, cache_dir=Path(cache_dir), progress=False
            ),
            console=console,
        )
        shutil.rmtree(path, ignore_errors=True)
        staging.replace(path)
    return models


def _cached(root: Path) -> bool:
    return all(
        (root / name / MODEL_FILENAME).is_file() and (root / name / MANIFEST_FILENAME).is_file()
        for name in REGION_MODELS
    )


def _models_root(settings: RegionsSettings, default_model: Path, cache_dir: Path) -> Path:
    """Where this default model's bay and gate are cached (named by the recipe's key)."""
    return Path(cache_dir) / "demo-region-models" / _key(settings, read_manifest(default_model).model_sha256)


@dataclass
class BackgroundTraining:
    """The child training ``bay`` and ``gate``, and where its output goes."""

    process: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        """A demo that ends early does not leave the child training behind it."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def start_region_models(
    settings: RegionsSettings, default_model: Path, cache_dir: Path, log_path: Path
) -> BackgroundTraining | None:
    """Train ``bay`` and ``gate`` in a child process (its output in ``log_path``); None when cached."""
    if _cached(_models_root(settings, default_model, cache_dir)):
        return None
    arguments = {
        "settings": asdict(settings),
        "default_model": str(default_model),
        "cache_dir": str(cache_dir),
    }
    environment = checkout_environment()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:  # the child holds its own copy of the descriptor
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.demo.region_models", json.dumps(arguments)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    return BackgroundTraining(process, log_path)


def wait_for_region_models(training: BackgroundTraining, console: Console) -> None:
    """Join the background training; a failed child is said in one line (ensure_region_models then trains)."""
    if training.process.wait() != 0:
        console.print(
            f"[yellow]Training the region models in the background failed (exit {training.process.returncode}, "
            f"log {training.log_path}); training them now.[/]"
        )
    else:
        console.print(f"Region models trained while the cameras ran (log {training.log_path})")


def main(argv: list[str]) -> int:
    """``python -m infra.demo.region_models '{"settings": ..., "default_model": ..., "cache_dir": ...}'``."""
    # Below the function's priority: the cameras' frames are answered first, the training takes
    # the CPU they leave (measured: the cameras' stage 2 to 4 s longer at the same priority).
    os.nice(10)
    arguments = json.loads(argv[0])
    fields = arguments["settings"]
    settings = RegionsSettings(**{**fields, "hold": tuple(fields["hold"])})
    ensure_region_models(settings, Path(arguments["default_model"]), Path(arguments["cache_dir"]), Console())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
