"""The LightGBM head: its parameters, its fit, and the float32 thresholds that make it exportable.

Everything here is deterministic under ``seed``: LightGBM runs with ``deterministic=True``,
``force_row_wise=True`` and a fixed thread count, and it always trains on float32 features
(the exported ONNX trees compare in float32; float64 training picks thresholds that flip
when the features are rounded to float32).
"""

from __future__ import annotations

from typing import Any

import numpy as np

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


def fit_final(features: np.ndarray, y: np.ndarray, params: dict[str, Any] | None = None, seed: int = 0):
    """The shipped head: the CV's parameters, fitted once on every frame.

    Its split thresholds are snapped to float32 (``snap_thresholds_to_float32``), so the
    ONNX trees, which compare in float32, take exactly LightGBM's decisions.
    """
    features = np.ascontiguousarray(features, dtype=np.float32)
    classifier = fit_lightgbm(features, np.asarray(y, dtype=np.int64), resolve_params(params, seed))
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


def fit_lightgbm(features: np.ndarray, y: np.ndarray, params: dict[str, Any]):
    """One LightGBM classifier with exactly ``params`` (``resolve_params`` gives the defaults)."""
    from lightgbm import LGBMClassifier

    model = LGBMClassifier(**params)
    model.fit(features, y)
    return model


def fit_lightgbm_per_label(
    features: np.ndarray, y: np.ndarray, params: dict[str, Any] | None, seed: int
) -> list:
    """The shipped (or a fold's) LightGBMs: one binary classifier per column of Y."""
    return [fit_final(features, y[:, k].astype(np.int64), params, seed) for k in range(y.shape[1])]
