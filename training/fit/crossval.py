"""Cross-validation of a head on backbone features: one label per frame, or a set of labels.

``cross_validate`` (binary / multiclass) and ``cross_validate_multilabel`` (one binary head per
label) run on folds from ``training.fit.folds``: grouped by near-duplicates, so the figures are
not inflated by a frame being judged against its own twin. Both are deterministic under ``seed``
(``training.fit.lightgbm``).

The fold figures come from ``training.fit.metrics``; the decision thresholds (chosen on the
out-of-fold predictions) and the int8 guards from ``training.fit.thresholds``. Label sets: the
per-fold figures use, for each fold, thresholds chosen on the *other* folds' OOF predictions,
so a fold's labels never set its own threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from training.data.loading import DatasetError
from training.fit.folds import grouped_folds, make_folds
from training.fit.lightgbm import fit_lightgbm, fit_lightgbm_per_label, resolve_params
from training.fit.metrics import (
    FoldMetrics,
    aggregate_multilabel,
    aggregate_per_class,
    aggregate_scalars,
    compute_metrics,
    finite,
    finite_value,
    multilabel_metrics,
)
from training.fit.thresholds import (
    DEFAULT_TARGET_PRECISION,
    Thresholds,
    apply_thresholds,
    choose_multilabel_thresholds,
    choose_thresholds,
)


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
                model = fit_lightgbm(fold_x[train_idx], y[train_idx], params)
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


# --- label sets ------------------------------------------------------------------------------


@dataclass
class MultiLabelCV:
    labels: list[str]
    folds: int
    seed: int
    params: dict[str, Any]
    head: str
    y: np.ndarray  # uint8 [N, L]
    fold_of: np.ndarray  # int [N]
    oof_probabilities: np.ndarray  # float32 [N, L], independent per label
    thresholds: dict[str, float]
    fold_metrics: list[dict[str, Any]]
    mean: dict[str, float]
    std: dict[str, float]
    per_label: dict[str, dict[str, dict[str, float]]]  # label -> metric -> {"mean", "std"}
    pooled: dict[str, Any]  # the metrics once on all OOF predictions at the shipped thresholds
    fold_strategy: str
    extra: dict[str, Any] = field(default_factory=dict)

    task = "multilabel"

    def predicted_sets(self) -> np.ndarray:
        return apply_thresholds(self.oof_probabilities, self.labels, self.thresholds)

    def summary(self) -> dict[str, Any]:
        return finite(
            {
                "task": "multilabel",
                "head": self.head,
                "folds": self.folds,
                "seed": self.seed,
                "grouping": self.fold_strategy,
                "mean": self.mean,
                "std": self.std,
                "per_label": self.per_label,
                "thresholds": "per label, max F1 on out-of-fold probabilities",
                "params": self.params,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "labels": self.labels,
            "fold_metrics": finite(self.fold_metrics),
            "pooled": finite(self.pooled),
            "threshold_values": self.thresholds,
            "y": self.y.tolist(),
            "fold_of": self.fold_of.tolist(),
            "oof_probabilities": self.oof_probabilities.round(6).tolist(),
        }


class MultiLabelHead:
    """One fitted binary model per label; ``predict_proba`` gives float32 [N, L] (column 1 of each)."""

    def __init__(self, models: list, labels: list[str], kind: str = "lightgbm"):
        self.models = models
        self.labels = list(labels)
        self.kind = kind
        self.n_features_in_ = models[0].n_features_in_

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        features = np.ascontiguousarray(features, dtype=np.float32)
        return np.stack([m.predict_proba(features)[:, 1] for m in self.models], axis=1).astype(np.float32)


def cross_validate_multilabel(
    features: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    labels: list[str],
    *,
    folds: int = 5,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    fit=None,
    head: str = "lightgbm",
    fold_of: np.ndarray | None = None,
    progress: bool = True,
    fold_features: Callable[[int, np.ndarray], np.ndarray] | None = None,
) -> MultiLabelCV:
    """Grouped k-fold CV of one binary head per label. ``fit(features, Y, params, seed) -> [models]``
    (default: LightGBM); ``fold_of`` reuses given folds (every head on the same folds);
    ``fold_features(fold, train_idx) -> [N, F]``: each fold's own features (cross-fitting, as in
    ``training.fit.crossval.cross_validate``)."""
    features = np.ascontiguousarray(features, dtype=np.float32)
    y = np.asarray(y, dtype=np.uint8)
    groups = np.asarray(groups)
    if features.ndim != 2 or y.ndim != 2 or not len(features) == len(y) == len(groups):
        raise ValueError(f"features {features.shape}, Y {y.shape}, groups {groups.shape} do not line up")
    if y.shape[1] != len(labels):
        raise ValueError(f"Y has {y.shape[1]} columns for {len(labels)} labels")
    fit = fit or fit_lightgbm_per_label
    params_resolved = resolve_params(params, seed) if head == "lightgbm" else dict(params or {})
    if fold_of is None:
        fold_of, strategy = make_folds(y, groups, folds, seed, labels)
    else:
        strategy = "the folds given (shared by every head)"
    folds = int(fold_of.max()) + 1

    oof = np.zeros(y.shape, dtype=np.float32)
    with _progress_bar(progress, f"cross-validation ({head}, {len(labels)} labels)", folds) as advance:
        for fold in range(folds):
            train, valid = fold_of != fold, fold_of == fold
            for k, label in enumerate(labels):
                if len(np.unique(y[train, k])) < 2:
                    raise DatasetError(
                        f"cross-validation fold {fold}: the training part has no frames "
                        f"{'without' if y[train, k].all() else 'with'} label {label!r}; add more distinct frames "
                        "or lower --folds"
                    )
            fold_x = features if fold_features is None else fold_features(fold, np.flatnonzero(train))
            models = fit(fold_x[train], y[train], params, seed)
            oof[valid] = MultiLabelHead(models, labels).predict_proba(fold_x[valid])
            advance()

    fold_metrics = _label_set_fold_metrics(y, oof, fold_of, folds, labels)
    thresholds = choose_multilabel_thresholds(oof, y, labels)
    mean, std, per_label = aggregate_multilabel(fold_metrics, labels)
    return MultiLabelCV(
        labels=list(labels),
        folds=folds,
        seed=seed,
        params=params_resolved,
        head=head,
        y=y,
        fold_of=fold_of,
        oof_probabilities=oof,
        thresholds=thresholds,
        fold_metrics=fold_metrics,
        mean=mean,
        std=std,
        per_label=per_label,
        pooled=multilabel_metrics(y, oof, apply_thresholds(oof, labels, thresholds), labels),
        fold_strategy=strategy,
    )


def _label_set_fold_metrics(
    y: np.ndarray, oof: np.ndarray, fold_of: np.ndarray, folds: int, labels: list[str]
) -> list[dict[str, Any]]:
    """Each fold's figures at thresholds chosen on the *other* folds' OOF predictions: a fold's
    labels never set its own thresholds."""
    fold_metrics = []
    for fold in range(folds):
        valid = fold_of == fold
        others = choose_multilabel_thresholds(oof[~valid], y[~valid], labels)
        predicted = apply_thresholds(oof[valid], labels, others)
        fold_metrics.append(
            {
                "fold": fold,
                "n_valid": int(valid.sum()),
                **multilabel_metrics(y[valid], oof[valid], predicted, labels),
            }
        )
    return fold_metrics
