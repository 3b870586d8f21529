"""Decision thresholds chosen on out-of-fold predictions, and the int8 backbone's guard.

``choose_thresholds`` picks, per label, the lowest confidence at which the OOF frames accepted as
that label reach the target precision (or the best F1 when it is out of reach); ``coverage_at``
scores a set of thresholds through the function's own ``decide()``; ``precision_guard`` decides
whether the int8 backbone may ship, from the fp32 and int8 CVs' OOF predictions.

Label sets (multi-label): per label, the threshold that maximises that label's F1 on the
out-of-fold probabilities (ties: the lowest); ``multilabel_guard`` is the int8 guard on label sets.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from functions.frames.decision import decide
from functions.frames.manifest import UNKNOWN_LABEL
from training.fit.metrics import finite, roc_auc

DEFAULT_TARGET_PRECISION = 0.95
# The int8 backbone may ship only if it changes (almost) nothing downstream.
GUARD_MIN_AGREEMENT = 0.995
GUARD_MAX_AUC_DROP = 0.005


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
        return finite(asdict(self))


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
    auc_fp32 = roc_auc(y, fp32, n_classes)
    auc_int8 = roc_auc(y, int8, n_classes)
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


# --- label sets ------------------------------------------------------------------------------


def best_f1_threshold(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """The threshold t (one of the observed float32 probabilities) maximising F1 of ``p >= t``."""
    p = np.asarray(probabilities, dtype=np.float32)
    truth = np.asarray(truth, dtype=bool)
    if not truth.any():
        return 1.0  # no positive frame: nothing supports ever saying this label
    order = np.argsort(-p, kind="stable")
    p_sorted, t_sorted = p[order], truth[order]
    tp = np.cumsum(t_sorted)
    accepted = np.arange(1, len(p) + 1)
    last_of_tie = np.r_[p_sorted[1:] != p_sorted[:-1], True]
    f1 = 2 * tp / (accepted + truth.sum())
    candidates = np.flatnonzero(last_of_tie)
    best = f1[candidates].max()
    i = int(candidates[np.flatnonzero(f1[candidates] == best)[-1]])
    return float(p_sorted[i])


def choose_multilabel_thresholds(
    probabilities: np.ndarray, y: np.ndarray, labels: list[str]
) -> dict[str, float]:
    return {label: best_f1_threshold(probabilities[:, k], y[:, k]) for k, label in enumerate(labels)}


def apply_thresholds(
    probabilities: np.ndarray, labels: list[str], thresholds: dict[str, float]
) -> np.ndarray:
    """uint8 [N, L]: the label set of each frame, as ``functions.frames.decision.decide_labels`` decides it."""
    from functions.frames.decision import decide_labels

    decisions = decide_labels(probabilities, labels, thresholds)
    return np.array([[label in d.labels for label in labels] for d in decisions], dtype=np.uint8).reshape(
        len(decisions), len(labels)
    )


class LabelSetCV(Protocol):
    """What the label-set guard reads of a cross-validation (``training.fit.crossval.MultiLabelCV``)."""

    labels: list[str]
    oof_probabilities: np.ndarray
    thresholds: dict[str, float]
    pooled: dict[str, Any]


def multilabel_guard(fp32: LabelSetCV, int8: LabelSetCV) -> GuardResult:
    """May the int8 backbone ship? Label sets (at the fp32 thresholds) must agree frame by frame,
    and the macro ROC-AUC over labels must not drop."""
    thresholds = fp32.thresholds
    sets_fp32 = apply_thresholds(fp32.oof_probabilities, fp32.labels, thresholds)
    sets_int8 = apply_thresholds(int8.oof_probabilities, int8.labels, thresholds)
    agreement = float((sets_fp32 == sets_int8).all(axis=1).mean())
    auc_fp32 = _macro_auc(fp32)
    auc_int8 = _macro_auc(int8)
    drop = auc_fp32 - auc_int8
    problems = []
    if agreement < GUARD_MIN_AGREEMENT:
        problems.append(
            f"int8 label sets equal fp32's on {agreement:.2%} of frames (< {GUARD_MIN_AGREEMENT:.1%})"
        )
    if not drop <= GUARD_MAX_AUC_DROP:
        problems.append(f"macro ROC-AUC drops by {drop:.4f} (> {GUARD_MAX_AUC_DROP})")
    reason = (
        f"int8 label sets equal fp32's on {agreement:.2%} of frames, macro ROC-AUC change {-drop:+.4f}"
        if not problems
        else "; ".join(problems)
    )
    return GuardResult(not problems, reason, agreement, auc_fp32, auc_int8, drop)


def _macro_auc(cv: LabelSetCV) -> float:
    return float(np.nanmean([cv.pooled["per_label"][label]["roc_auc"] for label in cv.labels]))
