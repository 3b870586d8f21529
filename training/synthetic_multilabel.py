"""Synthetic multi-label frames: any subset of {bus, car} on the street, plus a ``night`` attribute.

The same street scenes as ``training.synthetic`` (its renderer, its vehicles, its noise): the
single-label generator is untouched. A frame here holds no vehicle, a bus, a car, or both;
``night`` frames are lit by the night lighting and every other frame by one of the daytime
lightings (dusk included: lights on, but not night). When both vehicles are in a frame, one
stands close to the camera and the other further down the road in another lane, so that
neither hides the other completely.

The tree written by :func:`write_multilabel_dataset` is what ``camsort train --task multilabel``
reads with ``--label-sep _``: one folder per label set, labels sorted and joined by ``_``,
and ``none`` for the empty set::

    root/bus_car_night/bus_car_night-0-00000.jpg   -> {bus, car, night}
    root/none/none-0-00000.jpg                     -> {}
"""

from __future__ import annotations

import io
import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np

from training.scene import Scene
from training.scene_camera import LIGHTINGS
from training.scene_vehicles import Vehicle, VehicleBox
from training.synthetic import frame_seed, render_scene

VEHICLE_LABELS = ("bus", "car")
ATTRIBUTE_LABELS = ("night",)
MULTILABELS = ("bus", "car", "night")
EMPTY_SET_FOLDER = "none"
LABEL_SEP = "_"
NIGHT = next(light for light in LIGHTINGS if light.name == "night")
NOT_NIGHT = tuple(light for light in LIGHTINGS if light.name != "night")


def label_sets() -> list[tuple[str, ...]]:
    """Every subset of MULTILABELS, sorted: (), (bus,), (bus, car), ..."""
    return [
        combo for size in range(len(MULTILABELS) + 1) for combo in itertools.combinations(MULTILABELS, size)
    ]


def folder_name(labels: tuple[str, ...] | list[str]) -> str:
    return LABEL_SEP.join(sorted(labels)) or EMPTY_SET_FOLDER


def _apart(scene: Scene, vehicles: list[Vehicle]) -> list[Vehicle]:
    """Two vehicles: keep the first where it was planned, put the second behind it and beside its
    silhouette (near face to rear end, side panel included), so neither hides the other."""
    if len(vehicles) < 2:
        return vehicles
    near, far = vehicles[0], vehicles[1]
    rng, cam = scene.vehicle_rng, scene.camera

    def u(x: float, z: float) -> float:
        return cam.centre_x + cam.focal * x / z

    # the near vehicle's horizontal extent on screen, both faces: its side panel lies between them
    box = near.box
    left = min(u(box.x0, box.z0), u(box.x0, box.z1))
    right = max(u(box.x1, box.z0), u(box.x1, box.z1))
    half_width = 0.5 * (far.box.x1 - far.box.x0)
    length = far.box.z1 - far.box.z0
    z0 = box.z1 + rng.uniform(2.0, 15.0)
    span = cam.focal * 2 * half_width / z0
    margin = 0.02 * cam.width
    room_left, room_right = left, cam.width - right
    if room_right >= room_left:
        centre = min(right + margin + span / 2, cam.width - span / 2)
    else:
        centre = max(left - margin - span / 2, span / 2)
    x = (centre - cam.centre_x) * z0 / cam.focal
    return [near, replace(far, box=VehicleBox(x - half_width, x + half_width, z0, z0 + length))]


def render_multilabel_frame(
    labels: tuple[str, ...] | list[str], rng: np.random.Generator, width=1280, height=720
):
    """One frame holding exactly ``labels`` (a subset of MULTILABELS)."""
    unknown = sorted(set(labels) - set(MULTILABELS))
    if unknown:
        raise ValueError(
            f"unknown label(s) {unknown}: multi-label synthetic frames know {', '.join(MULTILABELS)}"
        )
    vehicles = [label for label in VEHICLE_LABELS if label in labels]
    if len(vehicles) == 2 and rng.random() < 0.5:
        vehicles.reverse()  # either may be the near one
    lightings = (NIGHT,) if "night" in labels else NOT_NIGHT
    return render_scene(vehicles, rng, width, height, lightings=lightings, arrange=_apart)


def multilabel_frame_jpeg(
    labels, seed: int, width: int = 1280, height: int = 720, quality: int = 85
) -> bytes:
    image = render_multilabel_frame(labels, np.random.default_rng(seed), width, height)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def write_multilabel_dataset(
    root: str | Path,
    per_set: int | dict[str, int],
    *,
    seed: int = 0,
    width: int = 1280,
    height: int = 720,
    progress: bool = False,
) -> dict[str, int]:
    """Write ``root/<folder>/<folder>-<seed>-<i:05d>.jpg`` for every label set (or the folders in
    ``per_set``); returns frames written per folder name."""
    folders = {folder_name(combo): combo for combo in label_sets()}
    counts = per_set if isinstance(per_set, dict) else {name: per_set for name in folders}
    unknown = sorted(set(counts) - set(folders))
    if unknown:
        raise ValueError(f"unknown label-set folder(s) {unknown}: choose from {sorted(folders)}")
    root = Path(root)
    jobs = [(name, i) for name in counts for i in range(counts[name])]
    for name in counts:
        (root / name).mkdir(parents=True, exist_ok=True)

    def write_one(name: str, i: int) -> None:
        data = multilabel_frame_jpeg(folders[name], frame_seed(seed, "multilabel/" + name, i), width, height)
        (root / name / f"{name}-{seed}-{i:05d}.jpg").write_bytes(data)

    if progress:
        from rich.progress import Progress

        with Progress() as bar:
            task = bar.add_task(f"writing multi-label synthetic frames to {root}", total=len(jobs))
            for job in jobs:
                write_one(*job)
                bar.advance(task)
    else:
        for job in jobs:
            write_one(*job)
    return dict(counts)
