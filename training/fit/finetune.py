"""`camsort train --fine-tune`: train the top of the ResNet50 on the user's frames, and say honestly
what it bought.

Evaluation is cross-fitted: within each outer fold of the very folds the frozen cross-validation
uses, the network is fine-tuned on that fold's training frames only (early stopping on a grouped
validation split *of those frames*), every frame's features are computed through that network,
and the head is fitted on the training frames' features and predicts the held-out fold. So every
out-of-fold prediction, every figure and every threshold comes from a network that never saw
the frame. The shipped network is then fine-tuned once more on all frames, for the median of the
folds' best epoch counts (no frame is left to stop on).

The frozen part is computed once per frame and view (training.fit.finetune_net caches it); each fold
trains only the stages after ``from_stage``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from functions.errors import ConfigurationError
from training.fit.augment import DEFAULT_AUGMENTATION, Augmentation
from training.fit.finetune_net import TrainableTop, TuneRun, TuneSettings, copy_backbone
from training.fit.frozen_part import frozen_activations

FoldFeatures = Callable[[int, np.ndarray], np.ndarray]  # (fold, its training frames) -> [N, F]

SHIP_CHOICES = ("always", "if-better")
EVALUATION = (
    "cross-fitting: in each outer fold the network was fine-tuned on that fold's training frames only "
    "(early stopping on a grouped split of them); the held-out fold's predictions and the thresholds "
    "come from networks that never saw those frames"
)


@dataclass
class FineTuneOutcome:
    keras_model: Any  # the full backbone, fine-tuned on every frame (what ships)
    cv: Any  # CVResult | MultiLabelCV, cross-fitted: out-of-fold answers of networks that never saw the frame
    fold_runs: list[TuneRun]
    final_run: TuneRun
    settings: TuneSettings
    augmentation: Augmentation
    seconds: dict[str, float]  # activations / cross_fit / final
    multilabel: bool = False
    shipped: bool = True
    decision: str = ""

    def record(self) -> dict[str, Any]:
        """What the manifest and the report say about the fine-tuning."""
        trained = self.final_run.frames_trained + sum(run.frames_trained for run in self.fold_runs)
        tuning_seconds = self.final_run.seconds + sum(run.seconds for run in self.fold_runs)
        return {
            "shipped": self.shipped,
            "decision": self.decision,
            "from_stage": self.settings.from_stage,
            "layers": [layer.name for layer in self._trained_layers()],
            "trainable_parameters": int(
                sum(np.prod(w.shape) for layer in self._trained_layers() for w in layer.trainable_weights)
            ),
            "epochs_final": self.final_run.best_epoch,
            "best_epoch_per_fold": [run.best_epoch for run in self.fold_runs],
            "max_epochs": self.settings.epochs,
            "patience": self.settings.patience,
            "min_epochs": self.settings.min_epochs,
            "validation_smoothing_epochs": self.settings.smoothing,
            "views_per_frame": self.settings.views,
            "batch_size": self.settings.batch_size,
            "learning_rate": self.settings.learning_rate,
            "schedule": "Adam, cosine decay to 0",
            "compute": self.settings.compute_dtype(),
            "head": "sigmoid per label" if self.multilabel else "softmax",
            "class_weighting": "none (binary cross-entropy per label)" if self.multilabel else "balanced",
            "dropout": self.settings.dropout,
            "augmentation": self.augmentation.as_dict(),
            "evaluation": EVALUATION,
            "seconds": {name: round(value, 1) for name, value in self.seconds.items()},
            "frames_per_second": round(trained / tuning_seconds, 2) if tuning_seconds else 0.0,
            "history_final": self.final_run.history,
        }

    def _trained_layers(self) -> list[Any]:
        from training.fit.finetune_net import STAGE_INPUTS

        names = [layer.name for layer in self.keras_model.layers]
        start = names.index(STAGE_INPUTS[self.settings.from_stage]) + 1
        return [layer for layer in self.keras_model.layers[start:] if layer.weights]


def cross_fit(
    keras_model,
    pixels: np.ndarray,
    sha256s: list[str],
    y: np.ndarray,
    groups: np.ndarray,
    n_outputs: int,
    *,
    settings: TuneSettings,
    cross_validate_with: Callable[[FoldFeatures], Any],
    backbone_key: str,
    cache_dir: Path,
    multilabel: bool = False,
    progress: bool = True,
    console=None,
    augmentation: Augmentation = DEFAULT_AUGMENTATION,
) -> FineTuneOutcome:
    """Cross-fit the fine-tuning, then fine-tune the shipped network on all frames.

    ``cross_validate_with(fold_features)`` runs the head's cross-validation on the frozen run's
    folds (``training.fit.crossval.cross_validate`` or ``training.fit.crossval.cross_validate_multilabel``
    with ``fold_features``); ``y``: int [N] classes, or uint8 [N, L] label sets (``multilabel``).
    """
    seconds: dict[str, float] = {}
    tuned = copy_backbone(keras_model)
    top = TrainableTop(
        tuned, settings.from_stage, n_outputs, multilabel=multilabel, dropout=settings.dropout,
        compute=settings.compute_dtype(),
    )  # fmt: skip
    with _progress(progress, console) as bars:
        started = time.perf_counter()
        activations = frozen_activations(
            keras_model,
            pixels,
            sha256s,
            from_stage=settings.from_stage,
            views=settings.views,
            backbone_key=backbone_key,
            augmentation=augmentation,
            seed=settings.seed,
            cache_dir=cache_dir,
            progress=bars.views,
        )
        seconds["activations"] = time.perf_counter() - started

        runs: list[TuneRun] = []

        def fold_features(fold: int, train_idx: np.ndarray) -> np.ndarray:
            fit_idx, stop_idx = _validation_split(train_idx, groups, settings)
            report = bars.epochs(f"fold {fold + 1}")
            runs.append(top.fit(activations, y, fit_idx, stop_idx, settings, report=report))
            return top.pooled_features(activations[0])

        started = time.perf_counter()
        cv = cross_validate_with(fold_features)
        seconds["cross_fit"] = time.perf_counter() - started

        started = time.perf_counter()
        epochs = max(1, int(np.median([run.best_epoch for run in runs])))
        every = np.arange(len(y))
        final = top.fit(
            activations, y, every, None, settings, epochs=epochs, report=bars.epochs("all frames")
        )
        seconds["final"] = time.perf_counter() - started
    return FineTuneOutcome(tuned, cv, runs, final, settings, augmentation, seconds, multilabel=multilabel)


def fine_tune_step(
    keras_model,
    pixels,
    sha256s,
    y,
    groups,
    frozen_cv,
    *,
    settings: TuneSettings,
    ship: str,
    metric: str,
    step: Callable[[str], None],
    **cross_fit_options: Any,
) -> tuple[FineTuneOutcome, bool]:
    """Cross-fit the fine-tuning and decide whether the fine-tuned network ships.

    ``metric``: the cross-validation figure (a key of ``cv.mean``, higher is better) that
    decides ``if-better``: balanced accuracy for one label per frame, macro F1 for label sets.
    """
    if ship not in SHIP_CHOICES:
        raise ConfigurationError(f"fine-tune ship {ship!r}: choose one of {', '.join(SHIP_CHOICES)}")
    step(
        f"fine-tuning from {settings.from_stage} ({settings.views} views per frame, <= {settings.epochs} epochs), "
        f"cross-fitted on the frozen cross-validation's folds"
    )
    outcome = cross_fit(keras_model, pixels, sha256s, y, groups, settings=settings, **cross_fit_options)
    frozen, tuned = frozen_cv.mean[metric], outcome.cv.mean[metric]
    comparison = f"cross-fitted {metric.replace('_', ' ')} {tuned:.3f} vs frozen {frozen:.3f}"
    if ship == "always":
        outcome.shipped, outcome.decision = True, f"shipped (asked for): {comparison}"
    elif tuned > frozen:
        outcome.shipped, outcome.decision = True, f"shipped, it pays: {comparison}"
    else:
        outcome.shipped, outcome.decision = False, f"not shipped, it does not pay: {comparison}"
    record = outcome.record()
    step(
        f"fine-tuning {outcome.decision}; {sum(outcome.seconds.values()):.0f} s "
        f"(frozen part {outcome.seconds['activations']:.0f} s, cross-fitting {outcome.seconds['cross_fit']:.0f} s, "
        f"final {outcome.seconds['final']:.0f} s), {record['frames_per_second']} frames/s trained"
    )
    return outcome, outcome.shipped


def tuned_backbone_path(keras_model, cache_dir: Path) -> Path:
    """Where the fine-tuned backbone's ONNX goes: named by its weights, so a rerun reuses it."""
    digest = hashlib.sha256()
    for weights in keras_model.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return Path(cache_dir) / "fine-tuned" / f"backbone-tuned-{digest.hexdigest()[:16]}.onnx"


def _validation_split(
    train_idx: np.ndarray, groups: np.ndarray, settings: TuneSettings
) -> tuple[np.ndarray, np.ndarray]:
    """Split a fold's training frames by near-duplicate group: (fit on, stop on)."""
    rng = np.random.default_rng(settings.seed)
    unique = np.unique(groups[train_idx])
    held = set(
        rng.choice(
            unique, size=max(1, round(len(unique) * settings.validation_fraction)), replace=False
        ).tolist()
    )
    stop = np.array([groups[i] in held for i in train_idx])
    return train_idx[~stop], train_idx[stop]


class _Progress:
    """One rich display for the frozen part (frames x views) and a line per training run."""

    def __init__(self, display):
        self._display = display
        self._views = None

    def views(self, done: int, total: int) -> None:
        if self._display is None:
            return
        if self._views is None:
            self._views = self._display.add_task("frozen part, frames x views", total=total)
        self._display.update(self._views, completed=done)

    def epochs(self, what: str) -> Callable[[int, int, dict[str, float]], None] | None:
        if self._display is None:
            return None
        task = self._display.add_task(f"fine-tuning, {what}", total=None)

        def report(epoch: int, epochs: int, record: dict[str, float]) -> None:
            figures = f"loss {record['loss']:.3f} acc {record['accuracy']:.3f}"
            if "val_loss" in record:
                figures += f" | val loss {record['val_loss']:.3f} acc {record['val_accuracy']:.3f}"
            self._display.update(
                task,
                completed=epoch,
                total=epochs,
                description=f"fine-tuning, {what}: epoch {epoch} {figures}",
            )

        return report


@contextmanager
def _progress(enabled: bool, console) -> Iterator[_Progress]:
    if not enabled:
        yield _Progress(None)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as display:
        yield _Progress(display)
