"""Classifier heads on the backbone features: ``lightgbm``, ``logistic``, ``svm``, or ``auto``.

* ``lightgbm``: the project's default (``training.fit.crossval`` parameters, float32 thresholds).
* ``logistic``: standardised features, ``LogisticRegression(class_weight="balanced")``.
* ``svm``: as in the Azure image-classification sample: L2-normalised features, a linear SVM
  with ``class_weight="balanced"``. An SVM gives margins, not probabilities: they come from
  ``CalibratedClassifierCV`` (sigmoid) fitted *inside* the training data it is given, so in
  cross-validation the calibration never sees the validation fold.
* ``auto``: every head on the same folds; the lowest out-of-fold log loss ships.

For a multi-label task each head is one binary model per label. The sklearn heads are
converted with skl2onnx into the same single graph (``export.multilabel_trees``) behind the
same parity gate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from functions.errors import ConfigurationError
from training.fit.crossval import MultiLabelHead, cross_validate, cross_validate_multilabel
from training.fit.folds import make_folds
from training.fit.lightgbm import fit_final, fit_lightgbm_per_label
from training.fit.thresholds import DEFAULT_TARGET_PRECISION

HEADS = ("lightgbm", "logistic", "svm")
HEAD_CHOICES = (*HEADS, "auto")
# Swept on the 80-frame synthetic multi-label set (random-init backbone, 3 folds, same folds):
# C = 0.01 / 0.1 / 1.0 gave OOF log loss 0.5094 / 0.5094 / 0.5099 (micro F1 0.681 / 0.684 /
# 0.673): after sigmoid calibration C matters little here; 0.1 is the best of the three.
SVM_C = 0.1
CALIBRATION_FOLDS = 3


def _sklearn_head(name: str, seed: int):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer, StandardScaler
    from sklearn.svm import LinearSVC

    if name == "logistic":
        return make_pipeline(
            StandardScaler(),
            LogisticRegression(C=0.1, class_weight="balanced", max_iter=2000, random_state=seed),
        )
    if name == "svm":
        svm = LinearSVC(C=SVM_C, class_weight="balanced", random_state=seed, max_iter=5000)
        return make_pipeline(
            Normalizer(norm="l2"), CalibratedClassifierCV(svm, method="sigmoid", cv=CALIBRATION_FOLDS)
        )
    raise ConfigurationError(f"head {name!r}: choose one of {', '.join(HEAD_CHOICES)}")


def fit_per_label(
    name: str, features: np.ndarray, y: np.ndarray, params: dict[str, Any] | None, seed: int
) -> list:
    """One fitted binary model per column of Y (uint8 [N, L])."""
    features = np.ascontiguousarray(features, dtype=np.float32)
    if name == "lightgbm":
        return fit_lightgbm_per_label(features, y, params, seed)
    return [_sklearn_head(name, seed).fit(features, y[:, k].astype(np.int64)) for k in range(y.shape[1])]


def single_fit(name: str, seed: int):
    """The ``fit`` that ``training.fit.crossval.cross_validate`` takes (None: its own LightGBM)."""
    if name == "lightgbm":
        return None
    return lambda features, y: fit_single(name, features, y, None, seed)


def _check(head: str, task: str) -> None:
    if head not in HEAD_CHOICES:
        raise ConfigurationError(f"--head {head!r}: choose one of {', '.join(HEAD_CHOICES)}")
    if task not in ("binary", "multiclass", "multilabel"):
        raise ConfigurationError(f"task {task!r}: choose binary, multiclass or multilabel")


def fit_single(name: str, features: np.ndarray, y: np.ndarray, params: dict[str, Any] | None, seed: int):
    """Binary / multiclass: one model over every label (LightGBM as the shipped head: float32-snapped)."""
    features = np.ascontiguousarray(features, dtype=np.float32)
    if name == "lightgbm":
        return fit_final(features, y, params, seed)
    return _sklearn_head(name, seed).fit(features, np.asarray(y, dtype=np.int64))


def cross_validate_heads(
    head: str,
    task: str,
    features,
    y,
    groups,
    labels,
    *,
    folds: int,
    seed: int,
    params=None,
    fold_of=None,
    progress: bool = True,
    target_precision: float | None = None,
) -> dict[str, Any]:
    """CV of ``head`` (or of every head for ``auto``), all on the same folds: name -> CV."""
    _check(head, task)
    names = HEADS if head == "auto" else (head,)
    if task != "multilabel":
        target_precision = DEFAULT_TARGET_PRECISION if target_precision is None else target_precision
        return {
            name: cross_validate(
                features,
                y,
                groups,
                labels,
                folds=folds,
                seed=seed,
                params=params,
                progress=progress,
                target_precision=target_precision,
                fit=single_fit(name, seed),
            )
            for name in names
        }
    if fold_of is None:
        fold_of, strategy = make_folds(np.asarray(y, np.uint8), np.asarray(groups), folds, seed, list(labels))
    else:
        strategy = "the folds given"
    results = {}
    for name in names:
        cv = cross_validate_multilabel(
            features,
            y,
            groups,
            labels,
            seed=seed,
            params=params if name == "lightgbm" else None,
            fit=lambda f, t, p, s, name=name: fit_per_label(name, f, t, p, s),
            head=name,
            fold_of=fold_of,
            progress=progress,
        )
        cv.fold_strategy = strategy
        results[name] = cv
    return results


def choose_head(requested: str, cvs: dict[str, Any]) -> tuple[str, str]:
    """The head that ships, and why."""
    if requested != "auto":
        return requested, f"--head {requested} requested"
    losses = {name: cv.mean["log_loss"] for name, cv in cvs.items()}
    best = min(losses, key=lambda name: (losses[name], HEADS.index(name)))
    others = ", ".join(f"{name} {loss:.4f}" for name, loss in sorted(losses.items(), key=lambda kv: kv[1]))
    return best, f"--head auto: lowest out-of-fold log loss ({others}; same folds)"


def fit_head(name: str, task: str, features, y, labels, *, params=None, seed: int = 0):
    _check(name, task)
    if task != "multilabel":
        return fit_single(name, features, y, params, seed)
    return MultiLabelHead(fit_per_label(name, features, y, params, seed), labels, kind=name)


def head_to_onnx(name: str, task: str, head, n_features: int, labels: list[str]):
    """The fitted head as one ONNX graph ``features`` -> ``probabilities`` [N, L]."""
    from export.multilabel_trees import multilabel_lightgbm_to_onnx, per_label_to_onnx
    from export.sklearn_heads import sklearn_to_onnx

    _check(name, task)
    if task != "multilabel":
        if name == "lightgbm":
            from export.trees import lightgbm_to_onnx

            return lightgbm_to_onnx(head, n_features, list(labels))
        return sklearn_to_onnx(head, n_features)
    if name == "lightgbm":
        return multilabel_lightgbm_to_onnx(head.models, n_features, labels)

    return per_label_to_onnx(head.models, labels, lambda model: sklearn_to_onnx(model, n_features))
