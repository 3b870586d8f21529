"""Turn model probabilities into a label. Pure: numpy only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from functions.frames.manifest import UNFAMILIAR_LABEL, UNKNOWN_LABEL


@dataclass(frozen=True)
class Decision:
    label: str  # one of the manifest labels, "unknown" or "unfamiliar"
    confidence: float  # probability of the top label
    top_label: str  # the arg-max label even when below threshold
    probabilities: dict[str, float]
    distance: float | None = None  # to the training frames (None: the model has no familiarity)


def decide(probabilities: np.ndarray, labels: list[str], thresholds: dict[str, float]) -> list[Decision]:
    """One decision per row of ``probabilities`` [N, C] (columns in ``labels`` order).

    The answer is the arg-max label when its probability reaches that label's threshold,
    otherwise ``unknown``: a camera frame the model is unsure about is better left
    unlabelled than mislabelled.
    """
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(labels):
        raise ValueError(f"probabilities shape {probabilities.shape} does not match {len(labels)} labels")
    decisions = []
    for row in probabilities:
        top = int(np.argmax(row))
        top_label = labels[top]
        confidence = float(row[top])
        label = top_label if confidence >= thresholds[top_label] else UNKNOWN_LABEL
        decisions.append(
            Decision(
                label=label,
                confidence=confidence,
                top_label=top_label,
                probabilities={name: float(p) for name, p in zip(labels, row, strict=True)},
            )
        )
    return decisions


@dataclass(frozen=True)
class LabelSetDecision:
    labels: list[str]  # every label at or above its threshold, in manifest order; possibly empty
    confidence: float  # the highest probability of any label (how sure the most likely label is)
    top_label: str  # the label with that probability, even when below its threshold
    probabilities: dict[str, float]
    distance: float | None = None  # to the training frames (None: the model has no familiarity)
    unfamiliar: bool = False  # unlike the training frames: the set is empty, whatever the probabilities


def decide_labels(
    probabilities: np.ndarray, labels: list[str], thresholds: dict[str, float]
) -> list[LabelSetDecision]:
    """Multi-label: one independent decision per label, per row of ``probabilities`` [N, L].

    A label is in the frame's set when its probability reaches that label's threshold; a
    frame may hold no label at all (the empty set is an answer, not ``unknown``).
    """
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if probabilities.ndim != 2 or probabilities.shape[1] != len(labels):
        raise ValueError(f"probabilities shape {probabilities.shape} does not match {len(labels)} labels")
    limits = np.array([thresholds[label] for label in labels], dtype=np.float64)
    decisions = []
    for row in probabilities:
        top = int(np.argmax(row))
        decisions.append(
            LabelSetDecision(
                labels=[label for label, p, t in zip(labels, row, limits, strict=True) if float(p) >= t],
                confidence=float(row[top]),
                top_label=labels[top],
                probabilities={name: float(p) for name, p in zip(labels, row, strict=True)},
            )
        )
    return decisions


def decide_for(task: str, probabilities: np.ndarray, labels: list[str], thresholds: dict[str, float]) -> list:
    """The manifest's task picks the rule: a label set for ``multilabel``, one label otherwise."""
    if task == "multilabel":
        return decide_labels(probabilities, labels, thresholds)
    return decide(probabilities, labels, thresholds)


def with_distances(
    decisions: Sequence[Decision | LabelSetDecision], distances: np.ndarray, threshold: float
) -> list[Decision | LabelSetDecision]:
    """Each decision with its distance; above ``threshold`` it becomes ``unfamiliar``.

    An unfamiliar frame never carries a confident label: one label becomes ``unfamiliar`` (the
    probabilities and the top label stay, for review), a label set becomes empty and marked.
    """
    doubted: list[Decision | LabelSetDecision] = []
    for decision, distance in zip(decisions, distances, strict=True):
        far = bool(distance > threshold)
        if isinstance(decision, LabelSetDecision):
            doubted.append(
                replace(decision, distance=float(distance), labels=[], unfamiliar=True)
                if far
                else replace(decision, distance=float(distance))
            )
        else:
            label = UNFAMILIAR_LABEL if far else decision.label
            doubted.append(replace(decision, distance=float(distance), label=label))
    return doubted
