"""Figures of a cross-validation: per-fold metrics, their mean and spread, JSON-safe values.

``compute_metrics`` scores one fold's (or the pooled) out-of-fold probabilities;
``aggregate_scalars`` / ``aggregate_per_class`` summarise the folds; ``finite`` turns the NaNs
of undefined figures into JSON ``null``. Label sets (multi-label): ``multilabel_metrics`` scores
them per label (precision, recall, F1, ROC-AUC) and as sets (micro / macro F1, subset accuracy,
Hamming loss, mean binary log loss: the head-selection criterion); ``aggregate_multilabel``
summarises the folds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

SCALAR_METRICS = ("accuracy", "balanced_accuracy", "roc_auc", "log_loss")
PER_CLASS_METRICS = ("precision", "recall", "f1")
PER_LABEL_METRICS = ("precision", "recall", "f1", "roc_auc")
SET_METRICS = ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "log_loss")


@dataclass(frozen=True)
class FoldMetrics:
    fold: int
    n_train: int
    n_valid: int
    accuracy: float
    balanced_accuracy: float
    roc_auc: float  # NaN when a validation fold lacks a class
    log_loss: float
    precision: list[float]  # per class, in labels order
    recall: list[float]
    f1: list[float]
    support: list[int]
    confusion: list[list[int]]  # rows: true label, columns: predicted label


def compute_metrics(y: np.ndarray, probabilities: np.ndarray, n_classes: int) -> dict[str, Any]:
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        log_loss,
        precision_recall_fscore_support,
    )

    classes = list(range(n_classes))
    predicted = probabilities.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=classes, zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "balanced_accuracy": float(balanced_accuracy_score(y, predicted)),
        "roc_auc": roc_auc(y, probabilities, n_classes),
        "log_loss": float(log_loss(y, np.clip(probabilities, 1e-7, 1.0), labels=classes)),
        "precision": [float(v) for v in precision],
        "recall": [float(v) for v in recall],
        "f1": [float(v) for v in f1],
        "support": [int(v) for v in support],
        "confusion": confusion_matrix(y, predicted, labels=classes).tolist(),
    }


def roc_auc(y: np.ndarray, probabilities: np.ndarray, n_classes: int) -> float:
    """Binary: the second label is the positive class. Multiclass: one-vs-rest, macro average."""
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) != n_classes:
        return math.nan  # undefined when a class is absent
    if n_classes == 2:
        return float(roc_auc_score(y, probabilities[:, 1]))
    # Rows renormalised in float64: sklearn insists they sum to 1 within its tolerance.
    probabilities = np.asarray(probabilities, dtype=np.float64)
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    return float(
        roc_auc_score(y, probabilities, multi_class="ovr", average="macro", labels=list(range(n_classes)))
    )


def aggregate_scalars(fold_metrics: list[FoldMetrics]) -> tuple[dict[str, float], dict[str, float]]:
    mean, std = {}, {}
    for name in SCALAR_METRICS:
        values = np.array([getattr(fold, name) for fold in fold_metrics], dtype=np.float64)
        finite = values[np.isfinite(values)]
        mean[name] = float(finite.mean()) if len(finite) else math.nan
        std[name] = float(finite.std()) if len(finite) else math.nan
    return mean, std


def aggregate_per_class(
    fold_metrics: list[FoldMetrics], labels: list[str]
) -> dict[str, dict[str, dict[str, float]]]:
    per_class: dict[str, dict[str, dict[str, float]]] = {}
    for k, label in enumerate(labels):
        per_class[label] = {}
        for name in PER_CLASS_METRICS:
            values = np.array([getattr(fold, name)[k] for fold in fold_metrics], dtype=np.float64)
            per_class[label][name] = {"mean": float(values.mean()), "std": float(values.std())}
        per_class[label]["support"] = {"total": float(sum(fold.support[k] for fold in fold_metrics))}
    return per_class


def finite_value(value: Any) -> Any:
    """JSON has no NaN: undefined figures become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def finite(data: Any) -> Any:
    if isinstance(data, dict):
        return {key: finite(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [finite(value) for value in data]
    return finite_value(data)


# --- label sets ------------------------------------------------------------------------------


def multilabel_metrics(
    y: np.ndarray, probabilities: np.ndarray, predicted: np.ndarray, labels: list[str]
) -> dict:
    from sklearn.metrics import (
        f1_score,
        hamming_loss,
        log_loss,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    y = np.asarray(y, dtype=np.uint8)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, average=None, zero_division=0
    )
    per_label = {}
    for k, label in enumerate(labels):
        auc = float(roc_auc_score(y[:, k], probabilities[:, k])) if len(np.unique(y[:, k])) == 2 else math.nan
        per_label[label] = {
            "precision": float(precision[k]),
            "recall": float(recall[k]),
            "f1": float(f1[k]),
            "roc_auc": auc,
            "support": int(support[k]),
        }
    clipped = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1 - 1e-7)
    losses = [log_loss(y[:, k], clipped[:, k], labels=[0, 1]) for k in range(len(labels))]
    return {
        "per_label": per_label,
        "micro_f1": float(f1_score(y, predicted, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(y, predicted, average="macro", zero_division=0)),
        "subset_accuracy": float((y == predicted).all(axis=1).mean()),
        "hamming_loss": float(hamming_loss(y, predicted)),
        "log_loss": float(np.mean(losses)),
    }


def _mean_std(values: list[float]) -> tuple[float, float]:
    kept = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    return (float(kept.mean()), float(kept.std())) if len(kept) else (math.nan, math.nan)


def aggregate_multilabel(fold_metrics: list[dict], labels: list[str]):
    """Set metrics: mean and std over folds; per label: mean and std of each, and the total support."""
    mean, std = {}, {}
    for name in SET_METRICS:
        mean[name], std[name] = _mean_std([fold[name] for fold in fold_metrics])
    per_label: dict[str, dict[str, dict[str, float]]] = {}
    for label in labels:
        per_label[label] = {}
        for name in PER_LABEL_METRICS:
            m, s = _mean_std([fold["per_label"][label][name] for fold in fold_metrics])
            per_label[label][name] = {"mean": m, "std": s}
        per_label[label]["support"] = {
            "total": float(sum(fold["per_label"][label]["support"] for fold in fold_metrics))
        }
    return mean, std, per_label
