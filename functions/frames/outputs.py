"""What a decision becomes: the result item's answer fields, the object's tags, the JSON answer.

One builder for every place that reports an answer (the S3 event path, the HTTP endpoint,
``camsort classify``), so a binary/multiclass answer and a multi-label answer have one shape
each, everywhere:

* one label (binary, multiclass): ``label``, ``top_label``, ``confidence``, ``probabilities``;
* multi-label: ``labels`` (every label at or above its threshold, manifest order, possibly
  empty), ``top_label``, ``confidence`` (the highest probability), ``probabilities`` (all).

Tags: S3 allows 10 tags per object and 256 characters per value, from a restricted
character set. A multi-label set goes into one tag, ``camsort-labels``, labels joined by
``+`` (``""`` for the empty set); when the joined set would exceed 256 characters the tag
holds the most probable labels that fit, followed by ``+...``, and the full set stays in the
results table. Pure: no boto3.
"""

from __future__ import annotations

from typing import Any

from functions.frames.decision import Decision, LabelSetDecision
from functions.frames.manifest import UNFAMILIAR_LABEL
from functions.stores.storage import TAG_PREFIX, tag_value

LABELS_TAG_SEP = "+"
TRUNCATED_MARK = "+..."
MAX_TAG_VALUE = 256


def answer_fields(decision: Decision | LabelSetDecision) -> dict[str, Any]:
    """The answer part of a result item (and of every JSON answer).

    ``distance`` (to the training frames) when the model describes them; a multi-label frame
    unlike them also carries ``unfamiliar: true`` (its set is empty).
    """
    answer: dict[str, Any]
    if isinstance(decision, LabelSetDecision):
        answer = {"labels": list(decision.labels)}
        if decision.unfamiliar:
            answer["unfamiliar"] = True
    else:
        answer = {"label": decision.label}
    answer |= {
        "top_label": decision.top_label,
        "confidence": decision.confidence,
        "probabilities": dict(decision.probabilities),
    }
    if decision.distance is not None:
        answer["distance"] = decision.distance
    return answer


def is_unfamiliar(answer: dict[str, Any] | None) -> bool:
    """A result item's (or JSON answer's) frame was unlike the model's training frames."""
    if not answer:
        return False
    return answer.get("label") == UNFAMILIAR_LABEL or bool(answer.get("unfamiliar"))


def labels_tag_value(decision: LabelSetDecision) -> str:
    """The label set as one S3 tag value (<= 256 characters, S3's tag character set);
    ``unfamiliar`` for a frame unlike the training frames (a reserved name, never a label)."""
    if decision.unfamiliar:
        return UNFAMILIAR_LABEL
    names = [tag_value(label) for label in decision.labels]
    joined = LABELS_TAG_SEP.join(names)
    if len(joined) <= MAX_TAG_VALUE:
        return joined
    by_probability = sorted(decision.labels, key=lambda label: -decision.probabilities.get(label, 0.0))
    kept: list[str] = []
    for name in map(tag_value, by_probability):
        candidate = LABELS_TAG_SEP.join([*kept, name])
        if len(candidate) + len(TRUNCATED_MARK) > MAX_TAG_VALUE:
            break
        kept.append(name)
    return LABELS_TAG_SEP.join(kept) + TRUNCATED_MARK


def answer_tags(decision: Decision | LabelSetDecision, model_version: str) -> dict[str, str]:
    """The tags the function puts on a classified object (3 tags whatever the task, and
    ``camsort-distance`` when the model describes its training frames)."""
    if isinstance(decision, LabelSetDecision):
        answer = {f"{TAG_PREFIX}labels": labels_tag_value(decision)}
    else:
        answer = {f"{TAG_PREFIX}label": decision.label}
    tags = {
        **answer,
        f"{TAG_PREFIX}confidence": f"{decision.confidence:.4f}",
        f"{TAG_PREFIX}model-version": model_version,
    }
    if decision.distance is not None:
        tags[f"{TAG_PREFIX}distance"] = f"{decision.distance:.3f}"
    return tags


def label_text(item: dict[str, Any]) -> str:
    """A result item's answer for a table cell: the label, or the set as ``{bus, car}``."""
    if item.get("unfamiliar"):
        return UNFAMILIAR_LABEL
    if "labels" in item and item.get("labels") is not None:
        return "{" + ", ".join(item["labels"]) + "}"
    return item.get("label") or ""
