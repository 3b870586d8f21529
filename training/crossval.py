"""Cross-validation of the LightGBM head on backbone features, decision thresholds, int8 guard.

Folds come from ``StratifiedGroupKFold``: near-duplicate frames share a group (see
``training.neardup``) and a group never straddles train and validation, so the figures are
not inflated by a frame being judged against its own twin.

Everything here is deterministic under ``seed``: LightGBM runs with ``deterministic=True``,
``force_row_wise=True`` and a fixed thread count, and it always trains on float32 features
(the exported ONNX trees compare in float32; float64 training picks thresholds that flip
when the features are rounded to float32).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from functions.decision import decide
from functions.manifest import UNKNOWN_LABEL
from training.dataset import DatasetError

DEFAULT_TARGET_PRECISION = 0.95
# The int8 backbone may ship only if it changes (almost) nothing downstream.
GUARD_MIN_AGREEMENT = 0.995
GUARD_MAX_AUC_DROP = 0.005

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

SCALAR_METRICS = ("accuracy", "balanced_accuracy", "roc_auc", "log_loss")
PER_CLASS_METRICS = ("precision", "recall", "f1")


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


@dataclass(frozen=True)
class LabelThreshold:
    label: str
    threshold: float
    # "precision_target": the lowest threshold reaching the target precision;
    # "max_f1": the target is out of reach, the threshold maximising F1 instead;
    # "no_predictions": no OOF frame was predicted as this label, so nothing supports trusting it.
    method: str
    precision: float  # OOF precision of frames accepted as this label at the threshold
    recall: float  # share of this label's frames accepted as this label at the threshold
    accepted: int  # frames accepted as this label at the threshold
    predicted: int  # frames whose top label is this label (any confidence)


@dataclass(frozen=True)
class Thresholds:
    target_precision: float
    per_label: list[LabelThreshold]
    coverage: float  # share of frames that are not "unknown"
    covered_accuracy: float  # accuracy on those frames (NaN when none is covered)

    def as_dict(self) -> dict[str, float]:
        """label -> threshold, the shape ``Manifest.thresholds`` and ``decide()`` take."""
        return {item.label: item.threshold for item in self.per_label}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
            "mean": _finite(self.mean),
            "std": _finite(self.std),
            "per_class": self.per_class,
            "target_precision": self.thresholds.target_precision,
            "coverage": self.thresholds.coverage,
            "covered_accuracy": _finite_value(self.thresholds.covered_accuracy),
            "params": self.params,
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready (arrays as lists)."""
        return {
            **self.summary(),
            "labels": self.labels,
            "task": self.task,
            "fold_metrics": [_finite(asdict(fold)) for fold in self.fold_metrics],
            "pooled": _finite(self.pooled),
            "thresholds": _finite(self.thresholds.to_dict()),
            "y": self.y.tolist(),
            "fold_of": self.fold_of.tolist(),
            "oof_probabilities": self.oof_probabilities.round(6).tolist(),
        }


@dataclass(frozen=True)
class GuardResult:
    passed: bool
    reason: str
    agreement: float  # share of OOF frames whose int8 label equals the fp32 label
    roc_auc_fp32: float
    roc_auc_int8: float
    roc_auc_drop: float
    min_agreement: float = GUARD_MIN_AGREEMENT
    max_auc_drop: float = GUARD_MAX_AUC_DROP

    def to_dict(self) -> dict[str, Any]:
        return _finite(asdict(self))


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
) -> CVResult:
    """Grouped, stratified k-fold CV of LightGBM; out-of-fold probabilities and thresholds."""
    from sklearn.model_selection import StratifiedGroupKFold

    features, y, groups = _check_inputs(features, y, groups, labels, folds)
    params = resolve_params(params, seed)
    n_classes = len(labels)

    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    fold_of = np.full(len(y), -1, dtype=np.int64)
    oof = np.zeros((len(y), n_classes), dtype=np.float32)
    fold_metrics = []
    with _progress_bar(progress, "cross-validation", folds) as advance:
        for fold, (train_idx, valid_idx) in enumerate(splitter.split(features, y, groups)):
            if len(np.unique(y[train_idx])) != n_classes:
                missing = sorted(set(range(n_classes)) - set(np.unique(y[train_idx]).tolist()))
                raise DatasetError(
                    f"cross-validation fold {fold}: no training frames of label(s) "
                    f"{[labels[i] for i in missing]}; add more distinct frames of those labels or lower --folds"
                )
            model = _fit(features[train_idx], y[train_idx], params)
            probabilities = model.predict_proba(features[valid_idx]).astype(np.float32)
            oof[valid_idx] = probabilities
            fold_of[valid_idx] = fold
            fold_metrics.append(
                FoldMetrics(
                    fold=fold,
                    n_train=len(train_idx),
                    n_valid=len(valid_idx),
                    **_metrics(y[valid_idx], probabilities, n_classes),
                )
            )
            advance()

    mean, std = _aggregate_scalars(fold_metrics)
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
        per_class=_aggregate_per_class(fold_metrics, labels),
        pooled=_metrics(y, oof, n_classes),
        thresholds=choose_thresholds(oof, y, labels, target_precision=target_precision),
    )


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


def choose_thresholds(
    probabilities: np.ndarray,
    y: np.ndarray,
    labels: list[str],
    *,
    target_precision: float = DEFAULT_TARGET_PRECISION,
) -> Thresholds:
    """Per-label thresholds on the top-class probability, chosen on OOF predictions.

    For each label, among frames whose top label is that label: the lowest threshold ``t``
    (taken from the observed confidences) such that the frames accepted with confidence
    ``>= t`` reach ``target_precision``; ``0.0`` when every such frame already does. If no
    threshold reaches the target, the threshold that maximises that label's F1 (ties: the
    lowest). A label never predicted gets 1.0: nothing supports trusting it.
    """
    # float32, exactly what the ONNX model outputs, so that ``confidence >= threshold`` in
    # decide() treats the frame at the threshold the same way as here.
    probabilities = np.asarray(probabilities, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    top = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    per_label = [
        _threshold_for_label(k, label, top, confidence, y, target_precision) for k, label in enumerate(labels)
    ]
    thresholds = Thresholds(
        target_precision=target_precision, per_label=per_label, coverage=0.0, covered_accuracy=0.0
    )
    coverage, covered_accuracy = coverage_at(probabilities, y, labels, thresholds.as_dict())
    return Thresholds(
        target_precision=target_precision,
        per_label=per_label,
        coverage=coverage,
        covered_accuracy=covered_accuracy,
    )


def coverage_at(
    probabilities: np.ndarray, y: np.ndarray, labels: list[str], thresholds: dict[str, float]
) -> tuple[float, float]:
    """(share of frames not ``unknown``, accuracy on those) under the function's own decide()."""
    decisions = decide(probabilities, labels, thresholds)
    covered = np.array([d.label != UNKNOWN_LABEL for d in decisions], dtype=bool)
    if not covered.any():
        return 0.0, math.nan
    predicted = np.array([labels.index(d.label) for d in decisions if d.label != UNKNOWN_LABEL])
    return float(covered.mean()), float((predicted == np.asarray(y)[covered]).mean())


def precision_guard(oof_fp32_probs: np.ndarray, oof_int8_probs: np.ndarray, y: np.ndarray) -> GuardResult:
    """May the int8 backbone ship? Compares the two CVs' OOF predictions frame by frame."""
    fp32 = np.asarray(oof_fp32_probs, dtype=np.float64)
    int8 = np.asarray(oof_int8_probs, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    if fp32.shape != int8.shape or fp32.shape[0] != len(y):
        raise ValueError(f"OOF shapes differ: fp32 {fp32.shape}, int8 {int8.shape}, y {y.shape}")
    n_classes = fp32.shape[1]
    agreement = float((fp32.argmax(axis=1) == int8.argmax(axis=1)).mean())
    auc_fp32 = _roc_auc(y, fp32, n_classes)
    auc_int8 = _roc_auc(y, int8, n_classes)
    drop = auc_fp32 - auc_int8
    problems = []
    if agreement < GUARD_MIN_AGREEMENT:
        problems.append(
            f"int8 labels agree with fp32 on {agreement:.2%} of frames (< {GUARD_MIN_AGREEMENT:.1%})"
        )
    if not drop <= GUARD_MAX_AUC_DROP:  # NaN fails too
        problems.append(f"ROC-AUC drops by {drop:.4f} (> {GUARD_MAX_AUC_DROP})")
    passed = not problems
    reason = (
        f"int8 agrees with fp32 on {agreement:.2%} of frames, ROC-AUC change {-drop:+.4f}"
        if passed
        else "; ".join(problems)
    )
    return GuardResult(
        passed=passed,
        reason=reason,
        agreement=agreement,
        roc_auc_fp32=auc_fp32,
        roc_auc_int8=auc_int8,
        roc_auc_drop=drop,
    )


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


def _metrics(y: np.ndarray, probabilities: np.ndarray, n_classes: int) -> dict[str, Any]:
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
        "roc_auc": _roc_auc(y, probabilities, n_classes),
        "log_loss": float(log_loss(y, np.clip(probabilities, 1e-7, 1.0), labels=classes)),
        "precision": [float(v) for v in precision],
        "recall": [float(v) for v in recall],
        "f1": [float(v) for v in f1],
        "support": [int(v) for v in support],
        "confusion": confusion_matrix(y, predicted, labels=classes).tolist(),
    }


def _roc_auc(y: np.ndarray, probabilities: np.ndarray, n_classes: int) -> float:
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


def _aggregate_scalars(fold_metrics: list[FoldMetrics]) -> tuple[dict[str, float], dict[str, float]]:
    mean, std = {}, {}
    for name in SCALAR_METRICS:
        values = np.array([getattr(fold, name) for fold in fold_metrics], dtype=np.float64)
        finite = values[np.isfinite(values)]
        mean[name] = float(finite.mean()) if len(finite) else math.nan
        std[name] = float(finite.std()) if len(finite) else math.nan
    return mean, std


def _aggregate_per_class(
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


def _threshold_for_label(k, label, top, confidence, y, target_precision) -> LabelThreshold:
    mine = top == k
    positives = int((y == k).sum())
    predicted = int(mine.sum())
    if predicted == 0:
        return LabelThreshold(label, 1.0, "no_predictions", math.nan, 0.0, 0, 0)
    # Walk thresholds from the most confident frame down: accepting frames in that order,
    # the accepted set at the i-th confidence is the first i+1 frames (ties kept together).
    order = np.argsort(-confidence[mine], kind="stable")
    conf_sorted = confidence[mine][order]
    correct_sorted = (y[mine][order] == k).astype(np.int64)
    true_positives = np.cumsum(correct_sorted)
    accepted = np.arange(1, predicted + 1)
    # Among tied confidences only the last position describes the set "confidence >= t".
    last_of_tie = np.r_[conf_sorted[1:] != conf_sorted[:-1], True]
    precision = true_positives / accepted
    recall = true_positives / max(positives, 1)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)

    candidates = np.flatnonzero(last_of_tie)
    reaching = candidates[precision[candidates] >= target_precision]
    if len(reaching):
        i = int(reaching[-1])  # the largest accepted set = the lowest threshold
        method = "precision_target"
    else:
        best = f1[candidates].max()
        i = int(candidates[np.flatnonzero(f1[candidates] == best)[-1]])
        method = "max_f1"
    # Accepting every frame predicted as this label needs no threshold at all.
    threshold = 0.0 if i == predicted - 1 else float(conf_sorted[i])
    return LabelThreshold(
        label=label,
        threshold=threshold,
        method=method,
        precision=float(precision[i]),
        recall=float(recall[i]),
        accepted=int(accepted[i]),
        predicted=predicted,
    )


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


def _finite_value(value: Any) -> Any:
    """JSON has no NaN: undefined figures become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _finite(data: Any) -> Any:
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(value) for value in data]
    return _finite_value(data)
