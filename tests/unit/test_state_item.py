"""The camera state item's wire form: one write unit for a full window, and the batch step."""

from __future__ import annotations

import hashlib

from bench.perf.pricing import dynamodb_item_bytes
from functions.state.episodes import CameraState, advance, advance_batch
from functions.state.smoothing import Frame, Rule
from functions.state.state_item import readable_state, state_from_item, state_to_item
from functions.stores.results import deserialize_item

RULE = Rule()  # the default: keep=12


def frame(second: int, label: str, confidence: float = 0.8765) -> Frame:
    # A realistic key: bucket/prefix/camera/<capture time>.jpg@<32 hex ETag>
    etag = hashlib.md5(str(second).encode()).hexdigest()
    key = f"camsort-frames-prod-4f1c2a9e/frames/cam-0042/20261122T12{second // 60:02d}{second % 60:02d}123Z.jpg@{etag}"
    return Frame(f"2026-11-22T12:{second // 60:02d}:{second % 60:02d}.123Z", key, label, confidence)


def full_state() -> CameraState:
    state = CameraState("cam-0042")
    labels = ["bus", "bus", "car", "car", "unknown", "bus", "bus", "empty", "empty", "car", "car", "bus"]
    for second in range(40):
        state = advance(state, frame(second, labels[second % len(labels)]), RULE).state
    return state


def test_a_full_window_and_its_episode_fit_one_write_unit():
    state = full_state()
    assert len(state.window) == RULE.keep and state.episode is not None
    item = state_to_item(state, updated_at="2026-11-22T12:01:00.000Z")
    assert dynamodb_item_bytes(item) < 1024  # one write request unit (1 KB)


def test_the_item_round_trips():
    state = full_state()
    item = deserialize_item(state_to_item(state, updated_at="2026-11-22T12:01:00.000Z"))
    assert state_from_item(item) == state
    readable = readable_state(item)
    assert readable["last_frame"] == state.window[-1].to_item() and readable["state"] == state.state


def test_a_batch_in_any_order_is_the_frames_one_at_a_time_in_capture_order():
    labels = ["empty", "bus", "bus", "car", "bus", "bus", "bus", "empty", "empty", "empty"]
    frames = [frame(second, label) for second, label in enumerate(labels)]
    one_by_one, changes = CameraState("cam-0042"), []
    for f in frames:
        step = advance(one_by_one, f, RULE)
        one_by_one = step.state
        if step.opened and step.opened.is_change:
            changes.append((step.opened.state, f.key))
    batch = advance_batch(CameraState("cam-0042"), list(reversed(frames)), RULE)
    assert batch.state == one_by_one
    assert (
        [(episode.state, key) for episode, key in batch.opened]
        == changes
        == [
            ("bus", frames[2].key),
            ("none", frames[8].key),
        ]
    )
    assert [episode.state for episode in batch.closed] == ["none", "bus"]
    # Fed again (a redelivery), every frame is a duplicate and nothing changes.
    again = advance_batch(batch.state, frames, RULE)
    assert again.state == batch.state and again.duplicates == tuple(f.key for f in frames)
