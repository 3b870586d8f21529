"""The regions camera's score (infra/demo/regions.py): answers, smoothed states and events per region."""

from __future__ import annotations

from infra.demo.regions import match_events, score_regions, smoothed, totals
from training.data.synthetic_regions import Event

REGIONS = {"regions": [{"name": "bay1", "box": [0, 0, 0.5, 1], "model": "bay"},
                       {"name": "gate", "box": [0.5, 0, 1, 1], "model": "gate"}]}  # fmt: skip
CAPTURED = [f"2026-12-06T10:00:{i:02d}.000Z" for i in range(10)]


def test_events_match_once_within_the_tolerance_after_the_true_one():
    truth = [Event("bay1", 3, "empty", "occupied"), Event("bay1", 7, "occupied", "empty")]
    assert match_events(truth, [Event("bay1", 4, "empty", "occupied")], tolerance=2) == 1
    assert match_events(truth, [Event("bay1", 2, "empty", "occupied")], tolerance=2) == 0  # before it
    assert match_events(truth, [Event("bay1", 6, "empty", "occupied")], tolerance=2) == 0  # too late
    assert match_events(truth, [Event("bay1", 4, "empty", "occupied")] * 2, tolerance=2) == 1  # once
    assert (
        match_events(
            truth, [Event("bay1", 8, "occupied", "empty"), Event("bay1", 4, "empty", "occupied")], tolerance=2
        )
        == 2
    )


def test_the_stages_rule_smooths_each_region_apart():
    # bay1: occupied from frame 3 on, with one wrong answer at 6; the gate opens at frame 5
    bay = ["empty"] * 3 + ["occupied"] * 3 + ["empty"] + ["occupied"] * 3
    gate = ["closed"] * 5 + ["open"] * 5
    answers = [{"bay1": (b, 0.9), "gate": (g, 0.9)} for b, g in zip(bay, gate, strict=True)]
    states, events = smoothed(answers, CAPTURED, REGIONS)
    # two in a row (the default rule): a state changes on the second frame that supports it
    assert [s["bay1"] for s in states] == ["empty"] * 4 + ["occupied"] * 6  # one stray frame changes nothing
    assert [s["gate"] for s in states] == ["none", "closed", "closed", "closed", "closed", "closed"] + [
        "open"
    ] * 4
    assert events == [Event("bay1", 4, "empty", "occupied"), Event("gate", 6, "closed", "open")]
    truth = [
        {"bay1": "occupied" if i >= 3 else "empty", "gate": "open" if i >= 5 else "closed"} for i in range(10)
    ]
    true_events = [Event("bay1", 3, "empty", "occupied"), Event("gate", 5, "closed", "open")]
    scores = {s.region: s for s in score_regions(truth, true_events, answers, states, events, tolerance=2)}
    assert (scores["bay1"].answers_correct, scores["bay1"].states_correct) == (9, 9)
    assert (scores["gate"].answers_correct, scores["gate"].states_correct) == (10, 8)
    assert (scores["gate"].matched_events, scores["gate"].true_events, scores["gate"].found_events) == (
        1,
        1,
        1,
    )
    assert totals(list(scores.values())) == {
        "answer_accuracy": 19 / 20,
        "state_accuracy": 17 / 20,
        "event_precision": 1.0,
        "event_recall": 1.0,
    }


def test_a_region_without_answers_scores_nothing_and_a_regions_own_rule_applies():
    regions = {"regions": [{**REGIONS["regions"][0], "smoothing": {"k": 3}}]}
    answers = [{"bay1": ("occupied", 0.9)} for _ in range(4)] + [{} for _ in range(6)]
    states, events = smoothed(answers, CAPTURED, regions)
    assert [s.get("bay1") for s in states[:4]] == ["empty", "empty", "occupied", "occupied"]
    assert events == []  # the state the sequence started in, established within the first k frames
    (score,) = score_regions([{"bay1": "occupied"}] * 10, [], answers, states, events, tolerance=2)
    assert (score.frames, score.answer_accuracy, score.state_accuracy) == (4, 1.0, 0.5)
