"""Labelled car-park frames for region models: `camsort synth --regions`.

Two modes over the sites of ``training.data.carpark`` (one site per camera):

* independent frames (``write_regions_dataset``): every bay is occupied or empty and the gate
  open or closed, each by a fair coin, in every frame; every frame is an independent render
  (lighting, exposure, noise, cars, passers-by). The set for training and cross-validation.
* a sequence (``write_regions_sequence``): frames in time order, one camera; each region holds
  its state for a while (a run of frames drawn between ``hold``'s bounds) and then changes, so
  the state changes are events a smoothing rule can find and a score can count. A bay keeps
  its car for as long as it stays occupied; the light, the exposure and the noise are drawn
  anew in every frame, as in independent mode.

Both write, under the root::

    <camera_id>/<camera_id>-<seed>-<i:05d>.jpg   the frames
    labels.jsonl                                 {"key": "<camera_id>/...jpg", "region": "bay1", "label": "occupied"}
    cameras.json                                 {"cameras": {"<camera_id>": {"regions": [...]}}}
    regions/<camera_id>.json                     one camera's regions (`camsort camera regions set`)

and a sequence adds ``sequence.json``: the frames in order and the events (region, frame index,
previous and new state). The ground truth is the states each frame was drawn with, by
construction.
"""

from __future__ import annotations

import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.data.carpark import (
    CLOSED,
    EMPTY,
    GATE_REGION,
    OCCUPIED,
    OPEN,
    REGION_LABELS,
    CarPark,
    car_park,
    render_car_park,
)
from training.data.synthetic import for_each

LABELS_FILENAME = "labels.jsonl"
CAMERAS_FILENAME = "cameras.json"
REGIONS_FOLDER = "regions"
SEQUENCE_FILENAME = "sequence.json"
DEFAULT_HOLD = (6, 20)  # frames a region keeps its state in a sequence
# Every module whose code decides a car-park frame's bytes (synthetic.renderer_source_digest).
CARPARK_RENDERER_MODULES = (
    "training.data.synthetic_regions",
    "training.data.carpark",
    "training.data.scene",
    "training.data.scene_vehicles",
    "training.data.scene_camera",
)


@dataclass(frozen=True)
class RegionFrame:
    key: str  # relative to the root: <camera_id>/<name>.jpg
    camera_id: str
    states: dict[str, str]  # region -> label


@dataclass(frozen=True)
class Event:
    region: str
    frame: int  # index of the first frame in the new state
    previous: str
    new: str


def camera_ids(cameras: int) -> list[str]:
    return [f"lot-{k + 1:02d}" for k in range(cameras)]


def site_seed(seed: int, camera_id: str) -> int:
    return int(np.random.SeedSequence([seed, zlib.crc32(camera_id.encode())]).generate_state(1)[0])


INDEPENDENT, SEQUENCE = 1, 3  # the frames of the two modes never share a stream, whatever the seed


def _frame_seed(seed: int, camera_id: str, index: int, mode: int) -> int:
    return int(
        np.random.SeedSequence([seed, zlib.crc32(camera_id.encode()), index, mode]).generate_state(1)[0]
    )


def _coin_states(site: CarPark, rng: np.random.Generator) -> dict[str, str]:
    states = {bay.name: OCCUPIED if rng.random() < 0.5 else EMPTY for bay in site.bays}
    states[GATE_REGION] = OPEN if rng.random() < 0.5 else CLOSED
    return states


def _jpeg(image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _frame_name(camera_id: str, seed: int, index: int) -> str:
    return f"{camera_id}/{camera_id}-{seed}-{index:05d}.jpg"


def independent_frames(
    sites: list[CarPark], per_camera: int, seed: int, *, width: int, height: int
) -> Iterator[tuple[RegionFrame, bytes]]:
    """Each camera's frames with fair-coin states; the same arguments give the same bytes."""
    for site in sites:
        for index in range(per_camera):
            rng = np.random.default_rng(_frame_seed(seed, site.camera_id, index, INDEPENDENT))
            states = _coin_states(site, rng)
            image = render_car_park(site, states, rng, width=width, height=height)
            yield RegionFrame(_frame_name(site.camera_id, seed, index), site.camera_id, states), _jpeg(image)


def sequence_states(
    site: CarPark, frames: int, seed: int, *, hold: tuple[int, int] = DEFAULT_HOLD
) -> tuple[list[dict[str, str]], list[dict[str, int]], list[Event]]:
    """Per frame: each region's state and each occupied bay's car seed; and the events.

    Each region starts in a fair-coin state held for a run of ``hold`` frames (inclusive
    bounds), then flips; a new occupant is a new car.
    """
    low, high = hold
    if not 1 <= low <= high:
        raise ValueError(f"hold={hold}: a run of frames needs 1 <= low <= high")
    rng = np.random.default_rng([seed, zlib.crc32(site.camera_id.encode()), 2])
    states: list[dict[str, str]] = [{} for _ in range(frames)]
    cars: list[dict[str, int]] = [{} for _ in range(frames)]
    events: list[Event] = []
    for name in site.region_names():
        labels = REGION_LABELS[site.model_of(name)]
        state = labels[int(rng.integers(2))]
        left = int(rng.integers(1, high + 1))  # the first run started before the sequence
        car = int(rng.integers(2**63))
        for index in range(frames):
            if left == 0:
                new = labels[1 - labels.index(state)]
                events.append(Event(name, index, state, new))
                state, left, car = new, int(rng.integers(low, high + 1)), int(rng.integers(2**63))
            states[index][name] = state
            if state == OCCUPIED:
                cars[index][name] = car
            left -= 1
    events.sort(key=lambda event: (event.frame, event.region))
    return states, cars, events


def sequence_frames(
    site: CarPark, frames: int, seed: int, *, width: int, height: int, hold: tuple[int, int] = DEFAULT_HOLD
) -> tuple[Iterator[tuple[RegionFrame, bytes]], list[Event]]:
    states, cars, events = sequence_states(site, frames, seed, hold=hold)

    def render() -> Iterator[tuple[RegionFrame, bytes]]:
        for index in range(frames):
            rng = np.random.default_rng(_frame_seed(seed, site.camera_id, index, SEQUENCE))
            image = render_car_park(site, states[index], rng, cars=cars[index], width=width, height=height)
            frame = RegionFrame(_frame_name(site.camera_id, seed, index), site.camera_id, states[index])
            yield frame, _jpeg(image)

    return render(), events


def _write(
    root: Path, sites: list[CarPark], frames: Iterator[tuple[RegionFrame, bytes]], total: int, progress: bool
) -> list[RegionFrame]:
    root.mkdir(parents=True, exist_ok=True)
    (root / REGIONS_FOLDER).mkdir(exist_ok=True)
    cameras = {site.camera_id: site.regions() for site in sites}
    for camera_id, regions in cameras.items():
        (root / camera_id).mkdir(exist_ok=True)
        (root / REGIONS_FOLDER / f"{camera_id}.json").write_text(json.dumps(regions, indent=2) + "\n")
    (root / CAMERAS_FILENAME).write_text(json.dumps({"cameras": cameras}, indent=2) + "\n")
    written: list[RegionFrame] = []

    def write_one(rendered: tuple[RegionFrame, bytes]) -> None:
        frame, data = rendered
        (root / frame.key).write_bytes(data)
        written.append(frame)

    for_each(frames, write_one, f"writing car-park frames to {root}", total=total, progress=progress)
    with (root / LABELS_FILENAME).open("w") as handle:
        for frame in written:
            for region, label in frame.states.items():
                handle.write(json.dumps({"key": frame.key, "region": region, "label": label}) + "\n")
    return written


def write_regions_dataset(
    root: str | Path,
    per_camera: int,
    *,
    cameras: int = 1,
    seed: int = 0,
    bays: int = 8,
    width: int = 1280,
    height: int = 720,
    progress: bool = False,
) -> list[RegionFrame]:
    """Independent labelled frames of ``cameras`` car parks; returns what was written."""
    sites = [
        car_park(c, site_seed(seed, c), bays=bays, width=width, height=height) for c in camera_ids(cameras)
    ]
    frames = independent_frames(sites, per_camera, seed, width=width, height=height)
    return _write(Path(root), sites, frames, per_camera * len(sites), progress)


def write_regions_sequence(
    root: str | Path,
    frames: int,
    *,
    seed: int = 0,
    bays: int = 8,
    width: int = 1280,
    height: int = 720,
    hold: tuple[int, int] = DEFAULT_HOLD,
    camera_id: str | None = None,
    progress: bool = False,
) -> tuple[list[RegionFrame], list[Event]]:
    """One camera's frames in time order, and the events; ``sequence.json`` records both."""
    camera = camera_id or camera_ids(1)[0]
    site = car_park(camera, site_seed(seed, camera), bays=bays, width=width, height=height)
    rendered, events = sequence_frames(site, frames, seed, width=width, height=height, hold=hold)
    written = _write(Path(root), [site], rendered, frames, progress)
    record = {
        "camera_id": camera,
        "frames": [frame.key for frame in written],
        "events": [event.__dict__ for event in events],
    }
    (Path(root) / SEQUENCE_FILENAME).write_text(json.dumps(record, indent=2) + "\n")
    return written, events
