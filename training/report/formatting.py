"""How the training report writes its numbers (shared by the terminal table, the plots and the HTML)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

METRIC_TITLES = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced acc.",
    "roc_auc": "ROC-AUC",
    "log_loss": "log loss",
}
SET_TITLES = {
    "micro_f1": "micro F1",
    "macro_f1": "macro F1",
    "subset_accuracy": "subset acc.",
    "hamming_loss": "Hamming loss",
    "log_loss": "log loss",
}


def fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value).lower()
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            return "n/a"
        return f"{value:.4g}" if abs(value) < 1e-3 and value != 0 else f"{value:.3f}"
    if isinstance(value, dict):
        if not value:
            return "none"
        return ", ".join(f"{k}: {fmt(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v) for v in value)
    return str(value)


def mean_std(mean: float, std: float) -> str:
    return f"{fmt(mean)}±{fmt(std)}"


def short(mean: float, std: float) -> str:
    """``0.774±0.01``: narrow enough for seven columns in 80 (the report keeps 3 decimals)."""
    if not (np.isfinite(mean) and np.isfinite(std)):
        return mean_std(mean, std)
    return f"{mean:.3f}±{std:.2f}"
