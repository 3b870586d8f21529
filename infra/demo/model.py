"""The demo's model: cached per recipe, trained once from synthetic frames when missing."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from functions.errors import ConfigurationError
from functions.frames.manifest import MANIFEST_FILENAME, MODEL_FILENAME, load_verified
from infra import checkout_environment
from infra.demo.settings import DemoSettings
from training.data import synthetic

# Bumped when the demo's training recipe changes, so an old cached model is not reused.
# 3: the manifest describes the training frames (familiarity); 4: 60 frames per label;
# 5: fine-tuning's less noisy stopping (TuneSettings.min_epochs 8, smoothing 3);
# 6: fp32 only, at most 14 fine-tuning epochs, the final run recalibrated once (the lean first run)
DEMO_RECIPE_VERSION = 6


def demo_model_key(settings: DemoSettings) -> str:
    """Hash of everything that decides the demo model; a change trains a new one."""
    recipe = {
        "recipe": DEMO_RECIPE_VERSION,
        "weights": settings.weights,
        "per_label": settings.train_per_label,
        "folds": settings.folds,
        "precision": settings.precision,
        "seed": settings.seed,
        "fine_tune": settings.fine_tune,
        "tune_epochs": settings.tune_epochs,
        "unfamiliar_measured": 0,  # the demo model's training skips the familiarity measurement
        "target_precision": settings.target_precision,
        "head": settings.head,
        # The frames themselves: a change to the generator must not reuse a model trained on old ones.
        "synthetic_source": synthetic.renderer_source_digest(),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


# What decides the demo model, the fields the training child is given (demo_model_key's inputs).
MODEL_FIELDS = (
    "weights", "train_per_label", "folds", "precision", "seed", "fine_tune", "tune_epochs",
    "target_precision", "head", "cache_dir",
)  # fmt: skip


def ensure_demo_model(settings: DemoSettings, console: Console) -> Path:
    """The cached demo model for these settings, trained from synthetic frames if missing.

    The training runs in a child process (``python -m infra.demo.model``) that exits before the
    demo starts: TensorFlow and everything training allocated go back to the system, so the demo
    that follows (moto, the function, the cameras) runs beside none of it.
    """
    key = demo_model_key(settings)
    model_dir = Path(settings.cache_dir) / "demo-model" / key
    if (model_dir / MODEL_FILENAME).is_file() and (model_dir / MANIFEST_FILENAME).is_file():
        load_verified(model_dir)  # a damaged cache fails loudly instead of serving a wrong model
        console.print(f"[green]Using the cached demo model[/] {model_dir}")
        return model_dir
    console.print(
        Panel.fit(
            f"No cached demo model: training one now from {settings.train_per_label} synthetic frames per label "
            f"(weights={settings.weights}, {settings.folds}-fold cross-validation). This happens once; "
            f"the model is cached in {model_dir}.",
            title="camsort demo: training",
        )
    )
    fields = {name: getattr(settings, name) for name in MODEL_FIELDS}
    command = [
        sys.executable,
        "-m",
        "infra.demo.model",
        json.dumps({**fields, "cache_dir": str(settings.cache_dir)}),
    ]
    environment = checkout_environment()
    if (
        subprocess.run(command, env=environment, check=False).returncode != 0
        or not (model_dir / MANIFEST_FILENAME).is_file()
    ):
        raise ConfigurationError(
            f"training the demo model failed (its error is above); nothing was cached in {model_dir}"
        )
    return model_dir


def build_demo_model(settings: DemoSettings, console: Console) -> Path:
    """Train the demo model for ``settings`` in this process and publish it in the cache."""
    # Training needs TensorFlow, LightGBM, ...: imported only when a model must be trained.
    from training.data.synthetic import write_dataset
    from training.fit.finetune_net import TuneSettings
    from training.pipeline import Frames, SingleLabel, TrainSettings, train

    key = demo_model_key(settings)
    model_dir = Path(settings.cache_dir) / "demo-model" / key
    data_dir = Path(settings.cache_dir) / "demo-data" / key
    write_dataset(data_dir, settings.train_per_label, seed=settings.seed)
    staging = model_dir.with_name(f".{key}.partial")
    shutil.rmtree(staging, ignore_errors=True)  # left over by an interrupted run
    staging.parent.mkdir(parents=True, exist_ok=True)
    trained = train(
        SingleLabel(),
        Frames([str(data_dir)]),
        staging,
        TrainSettings(
            weights=settings.weights,
            folds=settings.folds,
            seed=settings.seed,
            precision=settings.precision,
            cache_dir=Path(settings.cache_dir),
            progress=True,
            fine_tune=TuneSettings(seed=settings.seed, epochs=settings.tune_epochs)
            if settings.fine_tune
            else None,
            fine_tune_ship="if-better",
            # The familiarity description ships; its measurement on 64 more frames (a backbone pass
            # the first run would pay) is `camsort train`'s: the demo measures on the live system.
            unfamiliar_per_kind=0,
            target_precision=settings.target_precision,
            head=settings.head,
        ),
        console=console,
    )
    # Atomic publish: a half-trained directory never looks like a cached model.
    shutil.rmtree(model_dir, ignore_errors=True)  # an incomplete one (no manifest) from an older run
    Path(trained).rename(model_dir)
    return model_dir


def main(argv: list[str]) -> int:
    """``python -m infra.demo.model '{"weights": ..., ...}'``: what ensure_demo_model runs."""
    fields = json.loads(argv[0])
    settings = DemoSettings(**{**fields, "cache_dir": Path(fields["cache_dir"])})
    try:
        build_demo_model(settings, Console())
    except ConfigurationError as error:
        Console(stderr=True).print(f"[bold red]{error}[/]")
        return 2
    return 0


def explain_weights(weights: str, fine_tuning: dict | None = None) -> str | None:
    """The on-screen caveat about the model's backbone, fine-tuning included, from its manifest."""
    tuning = fine_tuning or {}
    tuned = (
        f" Its last stage{'s' if tuning.get('from_stage') != 'conv5' else ''} (from {tuning.get('from_stage')}) "
        f"{'were' if tuning.get('from_stage') != 'conv5' else 'was'} fine-tuned on the demo's frames: {tuning.get('decision')}."
        if tuning.get("shipped")
        else f" Fine-tuning was tried and {tuning.get('decision')}."
        if tuning
        else ""
    )
    if weights == "none":
        return (
            "The ResNet50 backbone of this model is RANDOMLY INITIALISED (seeded, weights=none): ImageNet "
            f"weights cannot be downloaded on this machine.{tuned} The labels below are only as good as that. "
            "On a machine with the weights: camsort demo --weights imagenet (or a local .h5 path)."
        )
    return tuned.strip() or None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
