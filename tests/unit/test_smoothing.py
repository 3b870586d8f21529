"""Smoothing rules (functions/state/smoothing.py): every rule, frames in order and out of order."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from functions.errors import ConfigurationError
from functions.frames.keys import format_timestamp
from functions.state.smoothing import IDLE, Frame, Rule, SmoothingConfig, evaluate, insert, replay

T0 = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
LABELS = {"b": "bus", "c": "car", "e": "empty", "u": "unknown"}


def frames(pattern: str, *, confidence: float = 0.9, step_s: float = 1.0, start: int = 0) -> list[Frame]:
    """'bbce' -> bus, bus, car, empty, one second apart; an upper-case letter has confidence 0.5."""
    out = []
    for i, letter in enumerate(pattern):
        moment = T0 + timedelta(seconds=(start + i) * step_s)
        out.append(
            Frame(
                captured_at=format_timestamp(moment),
                key=f"frames/cam/{start + i:04d}.jpg@v",
                label=LABELS[letter.lower()],
                confidence=0.5 if letter.isupper() else confidence,
            )
        )
    return out


def states(sequence: list[Frame], rule: Rule) -> list[str]:
    return [result.state for _frame, result in replay(sequence, rule)]


def final(sequence: list[Frame], rule: Rule) -> tuple[str, str | None]:
    result = replay(sequence, rule)[-1][1]
    return result.state, result.since


def at(seconds: int) -> str:
    return format_timestamp(T0 + timedelta(seconds=seconds))


def shuffled_within(sequence: list[Frame], span: int, seed: int) -> list[Frame]:
    """Frames out of order, each at most ``span`` positions from its place (late, but in the window)."""
    rng = random.Random(seed)
    keyed = sorted(enumerate(sequence), key=lambda pair: pair[0] + rng.uniform(0, span))
    return [frame for _i, frame in keyed]


# --- k_of_n --------------------------------------------------------------------------------


def test_k_of_n_needs_k_sightings_in_the_last_n_frames():
    rule = Rule(mode="k_of_n", k=3, n=5)
    assert states(frames("eebebb"), rule) == [IDLE] * 5 + ["bus"]
    assert final(frames("eebebb"), rule) == ("bus", at(2))  # since: the first supporting frame


def test_k_of_n_ignores_a_flicker_and_ends_when_support_drops():
    rule = Rule(mode="k_of_n", k=3, n=5)
    # one car among buses changes nothing; the bus ends once fewer than 3 of the last 5 are buses
    assert states(frames("bbbcbbeeee"), rule) == [IDLE, IDLE] + ["bus"] * 5 + [IDLE] * 3


def test_k_of_n_over_a_time_window():
    rule = Rule(mode="k_of_n", k=3, window_s=4.0)
    # three buses 3 s apart never fall in one 4 s window; three buses 1 s apart do
    assert final(frames("b", start=0) + frames("b", start=3) + frames("b", start=6), rule)[0] == IDLE
    assert final(frames("bbb", start=10), rule) == ("bus", at(10))


@pytest.mark.parametrize("seed", range(5))
def test_k_of_n_out_of_order_within_the_window_ends_in_the_same_state(seed):
    rule = Rule(mode="k_of_n", k=3, n=5, keep=12)
    sequence = frames("eeebbbbbbbb")
    assert final(shuffled_within(sequence, 3, seed), rule) == final(sequence, rule) == ("bus", at(3))


# --- consecutive ---------------------------------------------------------------------------


def test_consecutive_needs_k_in_a_row():
    rule = Rule(mode="consecutive", k=3)
    assert states(frames("bbebbb"), rule) == [IDLE, IDLE, IDLE, IDLE, IDLE, "bus"]
    # and leaves after k frames in a row that do not support it
    assert states(frames("bbbeebeee"), rule)[2:] == ["bus", "bus", "bus", "bus", "bus", "bus", IDLE]


def test_consecutive_a_late_frame_inserted_in_order_breaks_the_run():
    rule = Rule(mode="consecutive", k=3)
    b0, e1, b2, b3 = frames("bebb")
    assert final([b0, b2, b3], rule)[0] == "bus"  # without the empty frame: three in a row
    # the empty frame arrives late, before the last bus: it is evaluated in its place
    assert final([b0, b2, e1, b3], rule)[0] == IDLE == final([b0, e1, b2, b3], rule)[0]


# --- hysteresis ----------------------------------------------------------------------------


def test_hysteresis_enters_above_enter_and_leaves_below_exit():
    rule = Rule(mode="k_of_n", k=2, n=3, enter=0.8, exit=0.4)
    # 0.5-confidence buses cannot start the state ...
    assert final(frames("BBB"), rule)[0] == IDLE
    # ... but keep one that confident frames started
    assert states(frames("bbBBBB"), rule) == [IDLE, "bus", "bus", "bus", "bus", "bus"]
    no_hysteresis = Rule(mode="k_of_n", k=2, n=3, enter=0.8, exit=0.8)
    assert states(frames("bbBBBB"), no_hysteresis) == [IDLE, "bus", "bus", IDLE, IDLE, IDLE]


@pytest.mark.parametrize("seed", range(3))
def test_hysteresis_out_of_order(seed):
    rule = Rule(mode="k_of_n", k=2, n=3, enter=0.8, exit=0.4)
    sequence = frames("bbBBBB")
    assert final(shuffled_within(sequence, 2, seed), rule) == final(sequence, rule)


# --- minimum dwell -------------------------------------------------------------------------


def test_min_dwell_delays_a_change_until_it_has_held_long_enough():
    rule = Rule(mode="k_of_n", k=2, n=3, min_dwell_s=3.0)
    assert states(frames("bbbbb"), rule) == [IDLE, IDLE, IDLE, "bus", "bus"]
    assert final(frames("bbbbb"), rule) == ("bus", at(0))  # start is still the first supporting frame
    # a 2-frame car never dwells long enough
    assert final(frames("ccee"), rule)[0] == IDLE


def test_min_dwell_out_of_order():
    rule = Rule(mode="k_of_n", k=2, n=3, min_dwell_s=3.0)
    sequence = frames("bbbbb")
    assert final([sequence[i] for i in (1, 0, 2, 4, 3)], rule) == ("bus", at(0))


# --- ignored labels ------------------------------------------------------------------------


def test_ignored_labels_never_become_a_state():
    rule = Rule(mode="k_of_n", k=2, n=3)
    assert states(frames("eeuu"), rule) == [IDLE] * 4
    custom = Rule(mode="k_of_n", k=2, n=3, ignore=("unknown",))
    assert final(frames("eee"), custom)[0] == "empty"


def test_leaving_a_state_for_none_starts_after_the_last_supporting_frame():
    rule = Rule(mode="k_of_n", k=2, n=3)
    assert final(frames("bbbeee"), rule) == (IDLE, at(3))


# --- the window ----------------------------------------------------------------------------


def test_insert_redelivery_and_late_frames():
    rule = Rule(mode="k_of_n", k=2, n=3, keep=3)
    window = tuple(frames("bbb", start=5))
    assert insert(window, window[1], rule) == (window, "duplicate")
    too_old = frames("c", start=1)[0]
    assert insert(window, too_old, rule) == (window, "late")
    in_between = Frame(format_timestamp(T0 + timedelta(seconds=5.5)), "other@v", "car", 0.9)
    new_window, outcome = insert(window, in_between, rule)
    assert outcome == "added" and [f.key for f in new_window] == [
        in_between.key,
        window[1].key,
        window[2].key,
    ]


def test_evaluate_keeps_the_since_of_a_held_state():
    rule = Rule(mode="k_of_n", k=2, n=3)
    result = evaluate(frames("bbb", start=10), rule, state="bus", since=at(0))
    assert (result.state, result.since, result.changed) == ("bus", at(0), False)


# --- configuration -------------------------------------------------------------------------


def test_config_per_camera_overrides_apply_on_the_stage_default():
    config = SmoothingConfig.parse(
        '{"default": {"k": 4, "n": 6, "ignore": ["empty"]}, "cameras": {"cam-03": {"mode": "consecutive", "k": 2}}}'
    )
    assert config.rule_for("cam-01") == Rule(k=4, n=6, ignore=("empty",))
    assert config.rule_for("cam-03") == Rule(mode="consecutive", k=2, n=6, ignore=("empty",))
    assert Rule() == Rule(
        mode="consecutive",
        k=2,
        enter=0.6,
        exit=0.4,
        ignore=("empty", "unknown", "unfamiliar"),
        abstain=("unknown", "unfamiliar"),
    )
    assert SmoothingConfig.parse("") == SmoothingConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ('{"default": {"kk": 1}}', "unknown key(s) kk"),
        ('{"default": {"mode": "median"}}', "mode 'median'"),
        ('{"default": {"enter": 0.3, "exit": 0.5}}', "exit (0.5) <= enter (0.3)"),
        ('{"default": {"mode": "k_of_n", "k": 6, "n": 5}}', "n=5 must be >= k=6"),
        ('{"other": {}}', '"default" and/or "cameras"'),
    ],
)
def test_config_errors_name_the_problem(text, message):
    with pytest.raises(ConfigurationError, match="CAMSORT_SMOOTHING") as info:
        SmoothingConfig.parse(text, "CAMSORT_SMOOTHING")
    assert message in str(info.value)


def test_a_late_frame_can_move_the_start_of_a_held_state_earlier():
    rule = Rule(mode="k_of_n", k=3, n=5, keep=12)
    b0, b1, b2, b3, b4 = frames("bbbbb")
    assert final([b2, b3, b4], rule) == ("bus", at(2))
    assert final([b2, b3, b4, b1, b0], rule) == ("bus", at(0)) == final([b0, b1, b2, b3, b4], rule)


def test_abstaining_unknown_frames_neither_end_nor_start_a_state():
    counting = Rule(mode="k_of_n", k=3, n=5, abstain=())
    abstaining = Rule(mode="k_of_n", k=3, n=5, abstain=("unknown",))
    sequence = frames("bbbuuuub")
    assert final(sequence, counting)[0] == IDLE  # four unknowns outvote the bus
    assert states(sequence, abstaining) == [IDLE, IDLE] + ["bus"] * 6  # no evidence: the bus stays
    # and unknowns between sightings do not stop a bus from being seen
    assert final(frames("buubuub"), abstaining) == ("bus", at(0))
    assert final(frames("buubuub"), counting)[0] == IDLE


@pytest.mark.parametrize("seed", range(3))
def test_abstaining_out_of_order(seed):
    rule = Rule(mode="k_of_n", k=3, n=5, abstain=("unknown",), keep=12)
    sequence = frames("eeubuubbuee")
    assert final(shuffled_within(sequence, 2, seed), rule)[0] == final(sequence, rule)[0]
