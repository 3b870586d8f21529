"""Camera health on synthetic arrays: the measures, the looks, the persistence, the item size."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter

from bench.perf.pricing import dynamodb_item_bytes
from functions.frames.image_health import FINGERPRINT_BITS, measure
from functions.state.camera_health import OK, Health, HealthConfig, look, observe
from functions.state.episodes import CameraState, advance_batch
from functions.state.observed import camera_batches
from functions.state.smoothing import Frame, Rule
from functions.state.state_item import state_from_item, state_to_item
from functions.stores.results import deserialize_item
from tests.unit.test_state_item import frame as state_frame

CONFIG = HealthConfig()


def scene(seed: int = 0, vehicle: int | None = None) -> np.ndarray:
    """A street-like 224 x 224 frame: blocks of colour with hard edges (buildings, road), and
    optionally a 'vehicle' (a dark box) at a seeded place."""
    rng = np.random.default_rng(seed)
    pixels = np.zeros((224, 224, 3), np.float64)
    for _ in range(40):
        y, x = rng.integers(0, 200, 2)
        h, w = rng.integers(10, 80, 2)
        pixels[y : y + h, x : x + w] = rng.uniform(30, 230, 3)
    if vehicle is not None:
        where = np.random.default_rng([seed, vehicle]).integers(20, 120, 2)
        pixels[where[0] : where[0] + 60, where[1] : where[1] + 80] = (40, 40, 60)
    noise = np.random.default_rng([seed, vehicle or 0, 7]).normal(0, 2, (224, 224, 1))
    return np.clip(pixels + noise, 0, 255).astype(np.uint8)


def blurred(pixels: np.ndarray, radius: float = 3.0) -> np.ndarray:
    return np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(radius)))


def trained(frames: int = 12) -> Health:
    health = Health()
    for index in range(frames):
        health = feed(health, scene(0, vehicle=index % 3 or None), index).health
    return health


def feed(health: Health, pixels: np.ndarray, index: int, config: HealthConfig = CONFIG):
    return observe(
        health, "cam-1", measure(pixels), f"2026-11-22T12:00:{index:02d}.000Z", f"k{index}", config
    )


def test_each_tamper_looks_like_itself_against_a_learned_reference():
    reference = trained().reference
    assert reference.frames == 12 and len(reference.votes) == FINGERPRINT_BITS
    assert look(measure(scene(0, vehicle=5)), reference, CONFIG)[0] == OK  # traffic is not a tamper
    uniform = np.full((224, 224, 3), (120, 110, 90), np.uint8)
    assert look(measure(uniform), reference, CONFIG)[0] == "covered"
    assert look(measure(blurred(scene(0))), reference, CONFIG)[0] == "defocused"
    moved, distance = look(measure(scene(1)), reference, CONFIG)  # another street
    assert moved == "moved" and distance > CONFIG.moved_fraction * FINGERPRINT_BITS
    shifted = np.roll(scene(0), 70, axis=1)  # the same street, turned aside
    assert look(measure(shifted), reference, CONFIG)[0] == "moved"
    dark = (scene(0) * 0.04).astype(np.uint8)
    assert look(measure(dark), reference, CONFIG)[0] == "dark"


def test_without_a_reference_only_the_absolute_conditions_are_told():
    fresh = Health().reference
    assert look(measure(np.zeros((224, 224, 3), np.uint8)), fresh, CONFIG)[0] == "dark"
    assert look(measure(np.full((224, 224, 3), 128, np.uint8)), fresh, CONFIG)[0] == "covered"
    assert look(measure(blurred(scene(0))), fresh, CONFIG)[0] == OK
    assert look(measure(scene(1)), fresh, CONFIG)[0] == OK


def test_a_condition_changes_the_health_only_once_it_holds_and_is_dated_by_its_first_frame():
    health = trained()
    covered = np.full((224, 224, 3), 100, np.uint8)
    steps = [feed(health, covered, 20)]
    steps.append(feed(steps[-1].health, covered, 21))
    assert [s.change for s in steps] == [None, None] and steps[-1].health.status == OK
    steps.append(feed(steps[-1].health, covered, 22))  # the third in a row (the default)
    change = steps[-1].change
    assert steps[-1].health.status == "covered" and change is not None
    assert (change["previous_health"], change["health"], change["since"], change["detected_at"]) == (
        OK,
        "covered",
        "2026-11-22T12:00:20.000Z",
        "2026-11-22T12:00:22.000Z",
    )
    assert change["event_id"] == "cam-1#health#1" and change["frames"] == 3
    # the reference did not learn the covered frames
    assert steps[-1].health.reference == health.reference
    # one healthy frame in between restarts the count; three in a row bring it back
    back = feed(steps[-1].health, scene(0), 23)
    assert back.health.status == "covered" and back.change is None
    for index in (24, 25):
        back = feed(back.health, scene(0), index)
    assert (
        back.health.status == OK
        and back.change["health"] == OK
        and back.change["since"] == ("2026-11-22T12:00:23.000Z")
    )


def test_a_flickering_condition_never_changes_the_health():
    health = trained()
    covered = np.full((224, 224, 3), 100, np.uint8)
    for index in range(20, 40):
        step = feed(health, covered if index % 2 else scene(0), index)
        health = step.health
        assert step.change is None
    assert health.status == OK


def test_persistence_is_configurable():
    quick = HealthConfig(persistence={"covered": 1, OK: 1})
    step = feed(trained(), np.full((224, 224, 3), 100, np.uint8), 20, quick)
    assert step.health.status == "covered" and step.change is not None


def test_the_state_item_with_a_full_window_and_health_is_one_write_unit():
    state = CameraState("cam-0042")
    frames = [state_frame(second, ("bus", "car", "empty", "unknown")[second % 4]) for second in range(30)]
    measures = {f.key: measure(scene(0, vehicle=i % 4 or None)) for i, f in enumerate(frames)}
    batch = advance_batch(state, frames, Rule(), measures, CONFIG)
    assert len(batch.state.window) == Rule().keep and batch.state.health.reference.frames == 30
    item = state_to_item(batch.state, updated_at="2026-11-22T12:01:00.000Z")
    assert dynamodb_item_bytes(item) < 1024
    assert state_from_item(deserialize_item(item)) == batch.state


def test_health_follows_the_frames_in_capture_order_and_ignores_redeliveries():
    frames = [Frame(f"2026-11-22T12:00:{s:02d}.000Z", f"k{s}", "empty", 0.9) for s in range(16)]
    covered = {f.key: measure(np.full((224, 224, 3), 90, np.uint8)) for f in frames[12:]}
    measures = {f.key: measure(scene(0)) for f in frames[:12]} | covered
    batch = advance_batch(CameraState("cam-1"), list(reversed(frames)), Rule(), measures, CONFIG)
    assert batch.state.health.status == "covered"
    assert [(c["health"], c["since"], key) for c, key in batch.health_changes] == [
        ("covered", frames[12].captured_at, frames[14].key)
    ]
    again = advance_batch(batch.state, frames[4:], Rule(), measures, CONFIG)  # those the window holds
    assert again.state == batch.state and again.health_changes == ()


def test_a_regions_cameras_whole_frames_feed_its_health_alone_once_each_in_capture_order():
    """A camera with regions: its ``state`` has no label to count, only the whole frame's measures."""
    street, covered = measure(scene(0)), measure(np.full((224, 224, 3), 90, np.uint8))
    frames = [(f"2026-11-22T12:00:{s:02d}.000Z", f"k{s:02d}") for s in range(8)]
    measures = {key: covered if index >= 4 else street for index, (_at, key) in enumerate(frames)}
    batch = advance_batch(CameraState("cam-1"), [], Rule(), measures, CONFIG, frames[::-1])
    state = batch.state
    assert (state.health.status, state.health.since) == ("covered", frames[4][0])
    assert (state.window, state.episode, state.health.reference.frames) == ((), None, 4)
    assert [(c["health"], key) for c, key in batch.health_changes] == [("covered", frames[6][1])]
    assert (state.health.last_at, state.health.last_key) == frames[7]
    # A redelivery of any of them (or a frame captured before the last one taken) changes nothing,
    # and says duplicate, so that the redelivery flushes the events their first writer queued.
    again = advance_batch(state, [], Rule(), measures, CONFIG, frames[5:7])
    assert again.state == state and again.duplicates == ("k05", "k06") and again.health_changes == ()
    assert state_from_item(deserialize_item(state_to_item(state, updated_at="t"))) == state
    assert advance_batch(state, [], Rule(), measures, None, frames).state == state  # health off


def test_a_regions_frame_items_measures_go_to_the_cameras_state_as_health_alone():
    health = measure(scene(0)).to_item()
    base = {"status": "ok", "object_id": "b/frames/cam-1/0.jpg", "camera_id": "cam-1"}
    frame = base | {
        "object_version": "v1",
        "captured_at": "2026-11-22T12:00:00.000Z",
        "regions": {"q1": "bus"},
    }
    region = base | {"object_version": "v1#region#q1", "region": "q1", "label": "bus", "confidence": 0.9}
    region["captured_at"] = frame["captured_at"]
    batches = {
        (b.camera_id, b.region): b for b in camera_batches([region, frame | {"health": health}], print)
    }
    assert batches["cam-1", "default"].frames == [] and batches["cam-1", "q1"].measured_only == []
    assert batches["cam-1", "default"].measured_only == [(frame["captured_at"], "b/frames/cam-1/0.jpg@v1")]
    assert batches["cam-1", "default"].measures == {"b/frames/cam-1/0.jpg@v1": measure(scene(0))}
    assert ("cam-1", "default") not in {(b.camera_id, b.region) for b in camera_batches([frame], print)}
