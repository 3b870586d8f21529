"""Review marks and shadow attributes with multi-label decisions (h-lifecycle's rules, label sets)."""

from __future__ import annotations

from functions.frames.decision import decide, decide_labels
from functions.frames.review import NEAR_THRESHOLD_REASON, UNKNOWN_REASON, review_reason
from functions.frames.shadow import shadow_attributes

LABELS = ["bus", "car", "night"]
THRESHOLDS = {"bus": 0.5, "car": 0.4, "night": 0.9}


class FakeModel:
    sha256 = "0" * 64

    class manifest:  # noqa: N801 - stands in for the Manifest attribute
        model_version = "cand-1"


def test_a_label_near_its_threshold_sends_a_multilabel_frame_to_review():
    near, clear = decide_labels([[0.95, 0.43, 0.01], [0.99, 0.01, 0.01]], LABELS, THRESHOLDS)
    assert review_reason(near, THRESHOLDS, 0.05) == NEAR_THRESHOLD_REASON  # car 0.43 vs 0.40
    assert review_reason(clear, THRESHOLDS, 0.05) is None
    empty = decide_labels([[0.01, 0.01, 0.01]], LABELS, THRESHOLDS)[0]
    assert empty.labels == [] and review_reason(empty, THRESHOLDS, 0.05) is None  # the empty set is an answer


def test_single_label_review_unchanged():
    unknown = decide([[0.4, 0.35, 0.25]], LABELS, {"bus": 0.5, "car": 0.5, "night": 0.5})[0]
    assert review_reason(unknown, {"bus": 0.5, "car": 0.5, "night": 0.5}, 0.05) == UNKNOWN_REASON


def test_shadow_attributes_carry_the_candidates_label_set():
    decision = decide_labels([[0.95, 0.6, 0.01]], LABELS, THRESHOLDS)[0]
    attributes = shadow_attributes(decision, FakeModel(), 12.3456, "2026-12-01T00:00:00.000Z")
    assert attributes["shadow_labels"] == ["bus", "car"] and "shadow_label" not in attributes
    assert attributes["shadow_model_version"] == "cand-1" and attributes["shadow_ms_per_frame"] == 12.346
    single = decide([[0.9, 0.05, 0.05]], LABELS, {"bus": 0.5, "car": 0.5, "night": 0.5})[0]
    assert shadow_attributes(single, FakeModel(), 1.0, "t")["shadow_label"] == "bus"
