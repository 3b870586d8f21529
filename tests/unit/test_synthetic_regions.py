"""Car-park frames for region models: the ground truth is what the frame shows, the files agree."""

from __future__ import annotations

import json

import numpy as np
import pytest

from functions.frames.regions import parse_camera_config
from training.data.carpark import (
    BAY_MODEL,
    CLOSED,
    EMPTY,
    GATE_MODEL,
    GATE_REGION,
    OCCUPIED,
    OPEN,
    car_park,
    render_car_park,
)
from training.data.synthetic_regions import (
    CAMERAS_FILENAME,
    LABELS_FILENAME,
    SEQUENCE_FILENAME,
    sequence_states,
    site_seed,
    write_regions_dataset,
    write_regions_sequence,
)

W, H = 640, 360


@pytest.fixture(scope="module")
def site():
    return car_park("lot-01", site_seed(0, "lot-01"), width=W, height=H)


def test_a_site_has_at_least_six_bays_and_a_gate_inside_the_frame(site):
    config = parse_camera_config(
        site.regions(), camera_id=site.camera_id, known_models={BAY_MODEL, GATE_MODEL}, source="synth"
    )
    models = [region.model for region in config.regions]
    assert models.count(BAY_MODEL) == 8 and models.count(GATE_MODEL) == 1
    for region in config.regions:
        assert 0 <= region.box.left < region.box.right <= 1 and 0 <= region.box.top < region.box.bottom <= 1
        assert (region.box.right - region.box.left) * (region.box.bottom - region.box.top) < 0.25
    # the boxes are relative: the same site at another resolution has the same boxes
    assert car_park("lot-01", site_seed(0, "lot-01"), width=1280, height=720).regions() == site.regions()


def _pixels(site, states, cars, seed=5):
    return np.asarray(
        render_car_park(site, states, np.random.default_rng(seed), cars=cars, width=W, height=H),
        dtype=np.int16,
    )


def _inside(box, changed) -> float:
    left, top, right, bottom = box
    ys, xs = np.nonzero(changed)
    inside = (xs >= left * W - 1) & (xs <= right * W + 1) & (ys >= top * H - 1) & (ys <= bottom * H + 1)
    return float(inside.mean())


@pytest.mark.parametrize("region", ["bay2", "bay7", GATE_REGION])
def test_a_regions_state_shows_in_its_own_box(site, region):
    """Same frame, one region's state flipped: the pixels that change lie in that region's box."""
    states = {bay.name: EMPTY for bay in site.bays} | {GATE_REGION: CLOSED}
    cars = {
        bay.name: 100 + k for k, bay in enumerate(site.bays)
    }  # the cars' own streams: the frame's stays put
    flipped = states | {region: OPEN if region == GATE_REGION else OCCUPIED}
    changed = np.abs(_pixels(site, flipped, cars) - _pixels(site, states, cars)).sum(axis=2) > 24
    box = next(r["box"] for r in site.regions()["regions"] if r["name"] == region)
    assert changed.sum() > 150  # a car or a raised arm is plainly there
    assert _inside(box, changed) > 0.9  # (a car's shadow may reach past its bay)


def test_bad_states_are_refused(site):
    with pytest.raises(ValueError, match="region 'gate': state 'ajar'"):
        render_car_park(
            site, {bay.name: EMPTY for bay in site.bays} | {GATE_REGION: "ajar"}, np.random.default_rng(0)
        )


def test_the_written_set_agrees_with_itself(tmp_path):
    written = write_regions_dataset(tmp_path, 3, cameras=2, seed=4, width=W, height=H)
    rows = [json.loads(line) for line in (tmp_path / LABELS_FILENAME).read_text().splitlines()]
    assert len(written) == 6 and len(rows) == 6 * 9
    assert {(row["key"], row["region"]): row["label"] for row in rows} == {
        (frame.key, region): label for frame in written for region, label in frame.states.items()
    }
    cameras = json.loads((tmp_path / CAMERAS_FILENAME).read_text())["cameras"]
    assert sorted(cameras) == ["lot-01", "lot-02"] and cameras["lot-01"] != cameras["lot-02"]
    for frame in written:
        assert (tmp_path / frame.key).read_bytes()[:2] == b"\xff\xd8"
        assert frame.key.startswith(frame.camera_id + "/")
    assert json.loads((tmp_path / "regions" / "lot-02.json").read_text()) == cameras["lot-02"]
    again = tmp_path / "again"
    write_regions_dataset(again, 3, cameras=2, seed=4, width=W, height=H)
    assert all((again / f.key).read_bytes() == (tmp_path / f.key).read_bytes() for f in written)


def test_a_sequence_holds_states_between_its_events(site):
    states, cars, events = sequence_states(site, 120, seed=2, hold=(6, 20))
    assert events and {event.region for event in events} <= set(site.region_names())
    for name in site.region_names():
        changes = [i for i in range(1, 120) if states[i][name] != states[i - 1][name]]
        mine = [event for event in events if event.region == name]
        assert changes == [event.frame for event in mine]
        assert all(states[e.frame][name] == e.new and states[e.frame - 1][name] == e.previous for e in mine)
        assert all(b - a >= 6 for a, b in zip(changes, changes[1:], strict=False))  # held for a run
        for i in range(1, 120):  # a bay keeps its car while it stays occupied, a new one after
            if states[i][name] == OCCUPIED and states[i - 1][name] == OCCUPIED:
                assert cars[i][name] == cars[i - 1][name]
            if states[i][name] == EMPTY:
                assert name not in cars[i]


def test_a_written_sequence_records_its_events(tmp_path):
    written, events = write_regions_sequence(tmp_path, 25, seed=1, width=W, height=H, hold=(3, 5))
    record = json.loads((tmp_path / SEQUENCE_FILENAME).read_text())
    assert record["frames"] == [frame.key for frame in written]
    assert record["events"] == [event.__dict__ for event in events] and len(events) >= 9
    with pytest.raises(ValueError, match="hold=\\(5, 3\\)"):
        write_regions_sequence(tmp_path / "x", 5, hold=(5, 3))
