"""Cross-validation of the LightGBM head on backbone features, and the head that ships.

Folds come from ``StratifiedGroupKFold``: near-duplicate frames share a group (see
``training.features.neardup``) and a group never straddles train and validation, so the figures are
not inflated by a frame being judged against its own twin.

Everything here is deterministic under ``seed``: LightGBM runs with ``deterministic=True``,
``force_row_wise=True`` and a fixed thread count, and it always trains on float32 features
(the exported ONNX trees compare in float32; float64 training picks thresholds that flip
when the features are rounded to float32).

The fold figures are computed by ``training.fit.metrics``; the decision thresholds (chosen on the
out-of-fold predictions) and the int8 guard live in ``training.fit.thresholds``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from training.data.loading import DatasetError
from training.fit.metrics import (
    FoldMetrics,
    aggregate_per_class,
    aggregate_scalars,
    compute_metrics,
    finite,
    finite_value,
)
from training.fit.thresholds import DEFAULT_TARGET_PRECISION, Thresholds, choose_thresholds

# Small-data defaults: a few hundred frames per label, 2048 features. Shallow trees, a low
# learning rate and column subsampling keep the head from memorising individual frames.
# Tuned lightly on 300 synthetic frames (random-init backbone, 5 folds): 10 % of the
# columns per tree scored as well as 30 % (accuracy 0.463 vs 0.433, fold std 0.05) and
# trained ~5x faster; 7 leaves or 100 trees at rate 0.1 were no better.
DEFAULT_PARAMS: dict[str, Any] = {
    "n_estimators": 200,
    "num_leaves": 15,
    "learning_rate": 0.05,
    "min_child_samples": 5,
    "colsample_bytree": 0.1,
    "reg_lambda": 1.0,
    # One thread: the data are small, and OpenMP threads competing for busy cores were
    # measured 6x slower here than a single thread.
    "n_jobs": 1,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}


@dataclass
class CVResult:
    labels: list[str]
    task: str  # "binary" | "multiclass"
    folds: int
    seed: int
    params: dict[str, Any]
    y: np.ndarray  # int [N]
    fold_of: np.ndarray  # int [N]: the fold in which each frame was validated
    oof_probabilities: np.ndarray  # float32 [N, C], columns in labels order
    fold_metrics: list[FoldMetrics]
    mean: dict[str, float]
    std: dict[str, float]
    per_class: dict[str, dict[str, dict[str, float]]]  # label -> metric -> {"mean", "std"}
    pooled: dict[str, Any]  # the same metrics computed once on all OOF predictions
    thresholds: Thresholds
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The compact figures recorded in manifest.json."""
        return {
            "folds": self.folds,
            "seed": self.seed,
            "grouping": "StratifiedGroupKFold over near-duplicate groups",
            "mean": finite(self.mean),
            "std": finite(self.std),
            "per_class": self.per_class,
            "target_precision": self.thresholds.target_precision,
            "coverage": self.thresholds.coverage,
            "covered_accuracy": finite_value(self.thresholds.covered_accuracy),
            "params": self.params,
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (arrays as lists)."""
        return {
            **self.summary(),
            "labels": self.labels,
            "task": self.task,
            "fold_metrics": [finite(asdict(fold)) for fold in self.fold_metrics],
            "pooled": finite(self.pooled),
            "thresholds": finite(self.thresholds.to_dict()),
            "y": self.y.tolist(),
            "fold_of": self.fold_of.tolist(),
            "oof_probabilities": self.oof_probabilities.round(6).tolist(),
        }


# --- public API ----------------------------------------------------------------------------


def cross_validate(
    features: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    labels: list[str],
    *,
    folds: int = 5,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    target_precision: float = DEFAULT_TARGET_PRECISION,
    progress: bool = True,
    fit=None,
    fold_features: Callable[[int, np.ndarray], np.ndarray] | None = None,
) -> CVResult:
    """Grouped, stratified k-fold CV of LightGBM; out-of-fold probabilities and thresholds.

    ``fit(features, y) -> model with predict_proba`` replaces LightGBM (training.fit.heads);
    the folds depend only on (y, groups, folds, seed), so every head gets the same folds.
    ``fold_features(fold, train_idx) -> [N, F]`` gives each fold features of its own (cross-fitting:
    training.fit.finetune's network tuned on that fold's training frames only); ``features`` is then
    only checked for shape.
    """
    features, y, groups = _check_inputs(features, y, groups, labels, folds)
    params = resolve_params(params, seed)
    n_classes = len(labels)

    fold_of = np.full(len(y), -1, dtype=np.int64)
    oof = np.zeros((len(y), n_classes), dtype=np.float32)
    fold_metrics = []
    with _progress_bar(progress, "cross-validation", folds) as advance:
        for fold, (train_idx, valid_idx) in enumerate(grouped_folds(y, groups, folds=folds, seed=seed)):
            if len(np.unique(y[train_idx])) != n_classes:
                missing = sorted(set(range(n_classes)) - set(np.unique(y[train_idx]).tolist()))
                raise DatasetError(
                    f"cross-validation fold {fold}: no training frames of label(s) "
                    f"{[labels[i] for i in missing]}; add more distinct frames of those labels or lower --folds"
                )
            fold_x = features if fold_features is None else fold_features(fold, train_idx)
            if fit is None:
                model = _fit(fold_x[train_idx], y[train_idx], params)
            else:
                model = fit(fold_x[train_idx], y[train_idx])
            probabilities = model.predict_proba(fold_x[valid_idx]).astype(np.float32)
            oof[valid_idx] = probabilities
            fold_of[valid_idx] = fold
            fold_metrics.append(
                FoldMetrics(
                    fold=fold,
                    n_train=len(train_idx),
                    n_valid=len(valid_idx),
                    **compute_metrics(y[valid_idx], probabilities, n_classes),
                )
            )
            advance()

    mean, std = aggregate_scalars(fold_metrics)
    return CVResult(
        labels=list(labels),
        task="binary" if n_classes == 2 else "multiclass",
        folds=folds,
        seed=seed,
        params=params,
        y=y,
        fold_of=fold_of,
        oof_probabilities=oof,
        fold_metrics=fold_metrics,
        mean=mean,
        std=std,
        per_class=aggregate_per_class(fold_metrics, labels),
        pooled=compute_metrics(y, oof, n_classes),
        thresholds=choose_thresholds(oof, y, labels, target_precision=target_precision),
    )


def grouped_folds(
    y: np.ndarray, groups: np.ndarray, *, folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, valid) indices of each fold: stratified on y, no near-duplicate group split.

    Depends only on (y, groups, folds, seed): every head, precision and fine-tuning run that
    asks gets the same folds.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y, groups))


def fit_final(features: np.ndarray, y: np.ndarray, params: dict[str, Any] | None = None, seed: int = 0):
    """The shipped head: the CV's parameters, fitted once on every frame.

    Its split thresholds are snapped to float32 (``snap_thresholds_to_float32``), so the
    ONNX trees, which compare in float32, take exactly LightGBM's decisions.
    """
    features = np.ascontiguousarray(features, dtype=np.float32)
    classifier = _fit(features, np.asarray(y, dtype=np.int64), resolve_params(params, seed))
    return snap_thresholds_to_float32(classifier)


def snap_thresholds_to_float32(classifier):
    """Replace every split threshold ``t`` by the largest float32 ``<= t``, in place.

    LightGBM compares features with float64 thresholds placed midway between two training
    values. When those two float32 values are 1 ulp apart (common for int8 features, which
    sit on a coarse grid), the midpoint is not a float32, and ONNX's TreeEnsemble, which
    stores thresholds as float32, rounds it to the nearest float32 — possibly the upper
    value itself, which then goes left in ONNX and right in LightGBM (measured: 3 of 16
    frames off by up to 9e-3). For any float32 feature ``x``, ``x <= t`` exactly when
    ``x <= floor32(t)``, so the snapped model predicts the same on float32 features and is
    exactly representable in ONNX.
    """
    import lightgbm

    lines = []
    for line in classifier.booster_.model_to_string().split("\n"):
        if line.startswith("tree_sizes="):
            continue  # byte offsets of the old text; without them LightGBM parses tree by tree
        if line.startswith("threshold="):
            thresholds = [_floor_float32(float(value)) for value in line[len("threshold=") :].split()]
            line = "threshold=" + " ".join(repr(value) for value in thresholds)
        lines.append(line)
    classifier._Booster = lightgbm.Booster(model_str="\n".join(lines))
    return classifier


def _floor_float32(value: float) -> float:
    snapped = np.float32(value)
    if float(snapped) > value:
        snapped = np.nextafter(snapped, np.float32(-np.inf))
    return float(snapped)


def resolve_params(params: dict[str, Any] | None, seed: int) -> dict[str, Any]:
    """DEFAULT_PARAMS overridden by ``params``, with every seed set from ``seed``."""
    resolved = {**DEFAULT_PARAMS, **(params or {})}
    resolved["random_state"] = seed
    return resolved


# --- internals -----------------------------------------------------------------------------


def _check_inputs(features, y, groups, labels, folds):
    features = np.ascontiguousarray(features, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    groups = np.asarray(groups, dtype=np.int64)
    if features.ndim != 2 or len(features) != len(y) or len(y) != len(groups):
        raise ValueError(f"features {features.shape}, y {y.shape} and groups {groups.shape} do not line up")
    if len(labels) < 2:
        raise DatasetError(f"labels {labels!r}: need at least two labels (one folder per label)")
    if folds < 2:
        raise DatasetError(f"folds={folds}: cross-validation needs at least 2 folds")
    if y.min() < 0 or y.max() >= len(labels):
        raise ValueError(f"y holds values outside 0..{len(labels) - 1}")
    for k, label in enumerate(labels):
        images = int((y == k).sum())
        distinct = len(np.unique(groups[y == k]))
        if images < folds or distinct < folds:
            raise DatasetError(
                f"label {label!r}: {images} images in {distinct} distinct (non-near-duplicate) groups, "
                f"fewer than the {folds} folds; add more distinct images of {label!r} or lower --folds"
            )
    return features, y, groups


def _fit(features: np.ndarray, y: np.ndarray, params: dict[str, Any]):
    from lightgbm import LGBMClassifier

    model = LGBMClassifier(**params)
    model.fit(features, y)
    return model


@contextmanager
def _progress_bar(enabled: bool, description: str, total: int) -> Iterator:
    if not enabled:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)
