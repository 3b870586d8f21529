"""The familiarity description a model ships with, its threshold, and how well it finds strangers.

``describe(features, y, fold_of, ...)`` fits the description ``functions.familiarity``
reads (a probabilistic PCA per label, or per label set) on every training frame, and calibrates
its threshold out of fold: on each fold, a description fitted on the other folds scores the
fold's frames, and the threshold is the (1 - false-alarm rate) quantile of those out-of-fold
distances. A frame the model has never seen but that is like its training frames is what an
out-of-fold frame is, so about that share of such frames is called unfamiliar (the final
description, fitted on more frames, is if anything a little more tolerant).

``detection_table`` measures it: per kind of unfamiliar frame (``training.data.unfamiliar``),
the ROC of "unfamiliar" against the out-of-fold training frames, its AUC, and the share detected
at 1 % and 5 % false alarms.

``knn_distances`` is the alternative the choice was measured against (docs/doubt.md): the
distance to the k-th nearest training frame (L2-normalised features).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from functions.familiarity import DEFAULT_FALSE_ALARM_RATE, Familiarity, encode_array

DEFAULT_DIMS = 32  # within-component directions kept, at most (measured: docs/doubt.md)
FRAMES_PER_DIM = 10  # and at most one per 10 frames a description is fitted on
MAX_FIT_FRAMES = 4000  # frames the covariance is estimated from (a seeded sample beyond that)
REPORTED_RATES = (0.01, 0.05)


def components_of(y: np.ndarray) -> np.ndarray:
    """int [N]: one component per label (y [N]) or per distinct label set (y [N, L])."""
    y = np.asarray(y)
    if y.ndim == 1:
        return y.astype(np.int64)
    _, inverse = np.unique(y, axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def fit_familiarity(
    features: np.ndarray,
    components: np.ndarray,
    *,
    dims: int = DEFAULT_DIMS,
    seed: int = 0,
    threshold: float = 1.0,
    false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE,
) -> Familiarity:
    """The description of ``features`` (float32 [N, D]) grouped by ``components`` (int [N])."""
    from sklearn.covariance import ledoit_wolf_shrinkage

    features = np.asarray(features, dtype=np.float64)
    names = np.unique(components)
    means = np.stack([features[components == c].mean(axis=0) for c in names])
    offsets = features - means[np.searchsorted(names, components)]
    if len(offsets) > MAX_FIT_FRAMES:
        offsets = offsets[np.random.default_rng(seed).choice(len(offsets), MAX_FIT_FRAMES, replace=False)]
    degrees = max(1, len(offsets) - len(names))
    eigen, directions = _principal_directions(offsets)
    eigen = eigen / degrees
    total = float(eigen.sum())
    floor = max(total / features.shape[1], 1e-12) * 1e-3  # a direction never varied in is not exact
    k = int(min(dims, np.count_nonzero(eigen > floor), len(eigen)))
    kept = eigen[:k]
    if k > 1:  # Ledoit-Wolf towards the kept variances' mean, on the decorrelated coordinates
        shrinkage = ledoit_wolf_shrinkage(offsets @ directions[:k].T)
        kept = (1 - shrinkage) * kept + shrinkage * kept.mean()
    residual = max((total - float(eigen[:k].sum())) / max(1, features.shape[1] - k), floor)
    return Familiarity(
        means=means.astype(np.float32),
        basis=directions[:k].astype(np.float32),
        variances=np.maximum(kept, floor).astype(np.float32),
        residual_variance=float(residual),
        threshold=threshold,
        false_alarm_rate=false_alarm_rate,
    )


def _principal_directions(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The scatter's eigenvalues (descending) and unit directions [r, D] of ``offsets`` [N, D],
    from the smaller of the Gram matrix (N x N) and the scatter matrix (D x D): the same as an
    SVD, without LAPACK's wide-matrix SVD (0.7 s for 60 x 2048 on a busy 2-core machine)."""
    if len(offsets) <= offsets.shape[1]:
        values, vectors = np.linalg.eigh(offsets @ offsets.T)
        order = np.argsort(values)[::-1]
        values = np.maximum(values[order], 0.0)
        kept = values > values.max(initial=0.0) * 1e-12
        directions = (vectors[:, order[kept]].T @ offsets) / np.sqrt(values[kept])[:, None]
        return values[kept], directions
    values, vectors = np.linalg.eigh(offsets.T @ offsets)
    order = np.argsort(values)[::-1]
    return np.maximum(values[order], 0.0), vectors[:, order].T


def dims_for(fold_of: np.ndarray) -> int:
    """Directions kept: one per ``FRAMES_PER_DIM`` frames of the smallest out-of-fold fit, 2 to
    ``DEFAULT_DIMS``. More overfits: the trailing directions' variances, estimated on few frames,
    come out too small and held-out training frames look strange (measured: docs/doubt.md)."""
    smallest = min(int(np.sum(fold_of != fold)) for fold in np.unique(fold_of))
    return int(min(DEFAULT_DIMS, max(2, smallest // FRAMES_PER_DIM)))


def out_of_fold_distances(
    features: np.ndarray, components: np.ndarray, fold_of: np.ndarray, *, dims: int, seed: int
) -> np.ndarray:
    """float [N]: each frame's distance under a description fitted without its fold."""
    distances = np.zeros(len(features))
    for fold in np.unique(fold_of):
        held = fold_of == fold
        described = fit_familiarity(features[~held], components[~held], dims=dims, seed=seed)
        distances[held] = described.distances(features[held])
    return distances


def calibrated_threshold(oof: np.ndarray, false_alarm_rate: float) -> float:
    """The (1 - rate) quantile of the out-of-fold distances (the next value up: never below it)."""
    return float(np.quantile(oof, 1.0 - false_alarm_rate, method="higher"))


@dataclass(frozen=True)
class Described:
    familiarity: Familiarity
    oof: np.ndarray  # the out-of-fold distances the threshold was calibrated on
    dims: int

    def manifest_field(self, labels: list[str], prior: dict[str, float]) -> dict[str, Any]:
        """The manifest's ``familiarity``: the description, its threshold and the training prior."""
        f = self.familiarity
        return {
            "method": "ppca-mahalanobis",
            "components": int(f.means.shape[0]),
            "dims": int(f.basis.shape[0]),
            "means": encode_array(f.means),
            "basis": encode_array(f.basis),
            "variances": [float(v) for v in f.variances],
            "residual_variance": f.residual_variance,
            "threshold": f.threshold,
            "false_alarm_rate": f.false_alarm_rate,
            "calibration": {
                "frames": len(self.oof),
                "oof_above_threshold": float(np.mean(self.oof > f.threshold)),
                "oof_median": float(np.median(self.oof)),
            },
            "prior": prior,
        }


def describe(
    features: np.ndarray,
    y: np.ndarray,
    fold_of: np.ndarray,
    *,
    false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE,
    dims: int | None = None,
    seed: int = 0,
) -> Described:
    """Fit on every frame; threshold from the out-of-fold distances at ``false_alarm_rate``.

    ``dims`` (default ``dims_for(fold_of)``) is the same for the out-of-fold fits and the final one.
    """
    dims = dims_for(fold_of) if dims is None else dims
    components = components_of(y)
    oof = out_of_fold_distances(features, components, fold_of, dims=dims, seed=seed)
    threshold = calibrated_threshold(oof, false_alarm_rate)
    final = fit_familiarity(
        features, components, dims=dims, seed=seed, threshold=threshold, false_alarm_rate=false_alarm_rate
    )
    return Described(final, oof, dims)


def training_prior(y: np.ndarray, labels: list[str]) -> dict[str, float]:
    """Each label's share of the training frames (a multi-label frame counts for each of its labels)."""
    y = np.asarray(y)
    counts = y.sum(axis=0) if y.ndim == 2 else np.bincount(y, minlength=len(labels))
    total = max(1.0, float(np.sum(counts)))
    return {label: float(count) / total for label, count in zip(labels, counts, strict=True)}


def knn_distances(train: np.ndarray, query: np.ndarray, k: int = 5) -> np.ndarray:
    """Distance to the k-th nearest row of ``train`` (rows L2-normalised): the measured alternative."""

    def unit(rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.float64)
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)

    a, b = unit(query), unit(train)
    squared = np.maximum(2.0 - 2.0 * a @ b.T, 0.0)
    return np.sqrt(np.sort(squared, axis=1)[:, min(k, b.shape[0]) - 1])


def knn_out_of_fold(features: np.ndarray, fold_of: np.ndarray, k: int = 5) -> np.ndarray:
    distances = np.zeros(len(features))
    for fold in np.unique(fold_of):
        held = fold_of == fold
        distances[held] = knn_distances(features[~held], features[held], k)
    return distances


def roc_figures(familiar: np.ndarray, unfamiliar: np.ndarray) -> dict[str, float]:
    """AUC and the detection rate at each reported false-alarm rate (thresholds from ``familiar``)."""
    from sklearn.metrics import roc_auc_score

    truth = np.r_[np.zeros(len(familiar)), np.ones(len(unfamiliar))]
    figures = {"auc": float(roc_auc_score(truth, np.r_[familiar, unfamiliar])), "frames": len(unfamiliar)}
    for rate in REPORTED_RATES:
        figures[f"detected_at_{rate:g}"] = float(np.mean(unfamiliar > calibrated_threshold(familiar, rate)))
    return figures


def detection_table(oof: np.ndarray, unfamiliar: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Per kind (and all kinds together): ``roc_figures`` against the out-of-fold training frames."""
    table = {kind: roc_figures(oof, distances) for kind, distances in unfamiliar.items()}
    if len(unfamiliar) > 1:
        table["all"] = roc_figures(oof, np.concatenate(list(unfamiliar.values())))
    return table
