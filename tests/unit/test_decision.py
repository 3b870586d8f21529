"""decide(): arg-max label when it reaches its threshold, else 'unknown'."""

from __future__ import annotations

import numpy as np
import pytest

from functions.frames.decision import Decision, decide

LABELS = ["bus", "car", "empty"]
THRESHOLDS = {"bus": 0.6, "car": 0.5, "empty": 0.9}


def test_labels_and_unknown():
    probabilities = np.array(
        [
            [0.7, 0.2, 0.1],  # bus above 0.6
            [0.55, 0.4, 0.05],  # bus below 0.6 -> unknown
            [0.1, 0.5, 0.4],  # car exactly at its threshold -> car
            [0.05, 0.1, 0.85],  # empty below 0.9 -> unknown
        ],
        dtype=np.float32,
    )
    decisions = decide(probabilities, LABELS, THRESHOLDS)
    assert [d.label for d in decisions] == ["bus", "unknown", "car", "unknown"]
    assert [d.top_label for d in decisions] == ["bus", "bus", "car", "empty"]
    assert decisions[0] == Decision(
        label="bus",
        confidence=pytest.approx(0.7),
        top_label="bus",
        probabilities={"bus": pytest.approx(0.7), "car": pytest.approx(0.2), "empty": pytest.approx(0.1)},
    )


def test_empty_batch():
    assert decide(np.zeros((0, 3), dtype=np.float32), LABELS, THRESHOLDS) == []


@pytest.mark.parametrize("shape", [(3,), (2, 2), (1, 4)])
def test_shape_mismatch_is_refused(shape):
    with pytest.raises(ValueError, match="labels"):
        decide(np.zeros(shape, dtype=np.float32), LABELS, THRESHOLDS)
