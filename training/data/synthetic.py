"""Synthetic street-camera frames: a bus, a car, or no vehicle.

The tests, the demo and the benchmarks need labelled frames that look like what a pole-mounted
traffic camera uploads, without shipping a dataset. Each frame is a small 3D scene seen
through a pinhole camera a few metres above the road, aimed down the street at the oncoming
traffic: a little sky, buildings (a skyline and receding facades with windows), a road with
lanes and dashed markings converging on the vanishing point, street furniture, and for
``car`` / ``bus`` one vehicle drawn as boxes in perspective (roof, side, near face, wheels,
windows, lights, shadow). Vehicles are close, as traffic cameras see them: a bus spans a third
to a half of the frame width, a car a fifth to a third. Time of day changes the sky, what
glows and, through the camera's auto-exposure, the brightness and noise. An occluder (pole,
tree, sign, pedestrian) sometimes stands in front of the vehicle, and JPEG-like sensor noise
and an on-screen timestamp finish it off.

Car and bus differ by *shape and size* (bus: 10.5-13 m long, 3-3.4 m tall, boxy, a band of
side windows, a door, a destination sign; car: 4-5 m long, ~1.5 m tall, a low body with a
narrower cabin, a raked windscreen, a flat roof and two side windows), not by colour: both
draw from the same palette, with different but overlapping weights. Everything random comes
from the ``numpy.random.Generator`` passed in: the same seed gives the same bytes.

Multi-label frames (``write_multilabel_dataset``, for ``camsort train --task multilabel``) hold
any subset of {bus, car} plus a ``night`` attribute: ``night`` frames are lit by the night
lighting, every other frame by one of the daytime lightings (dusk included: lights on, but not
night). When both vehicles are in a frame, one stands close to the camera and the other further
down the road in another lane, so neither hides the other completely. The tree written is one
folder per label set, labels sorted and joined by ``_``, and ``none`` for the empty set::

    root/bus_car_night/bus_car_night-0-00000.jpg   -> {bus, car, night}
    root/none/none-0-00000.jpg                     -> {}

This module is the frames API (render, seed, encode, write a labelled folder); the scene it
draws lives in ``training.data.scene`` (the street), ``training.data.scene_vehicles`` (bus and car) and
``training.data.scene_camera`` (lighting, camera, exposure, noise, timestamp).
"""

from __future__ import annotations

import hashlib
import importlib
import io
import itertools
import zlib
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image, ImageDraw, ImageStat

from training.data.scene import Scene
from training.data.scene_camera import (
    LIGHTING_WEIGHTS,
    LIGHTINGS,
    Camera,
    Lighting,
    background,
    expose,
    timestamp,
)
from training.data.scene_vehicles import Vehicle, VehicleBox

T = TypeVar("T")

LABELS = ("bus", "car", "empty")
# Every module whose code decides a frame's bytes (see renderer_source_digest).
RENDERER_MODULES = (
    "training.data.synthetic",
    "training.data.scene",
    "training.data.scene_vehicles",
    "training.data.scene_camera",
)


def render_frame(label: str, rng: np.random.Generator, width: int = 1280, height: int = 720) -> Image.Image:
    """One RGB street-camera frame showing ``label`` ("bus", "car" or "empty")."""
    if label not in LABELS:
        raise ValueError(f"unknown label {label!r}: synthetic frames exist for {', '.join(LABELS)}")
    return render_scene([] if label == "empty" else [label], rng, width, height)


def render_scene(
    vehicles: list[str],
    rng: np.random.Generator,
    width: int = 1280,
    height: int = 720,
    *,
    lightings: tuple[Lighting, ...] | None = None,
    arrange: Callable[[Scene, list[Vehicle]], list[Vehicle]] | None = None,
    vehicle_rng: np.random.Generator | None = None,
) -> Image.Image:
    """A frame with each of ``vehicles`` ("bus" / "car") in it, lit by one of ``lightings``.

    ``lightings`` (default: every time of day, with LIGHTING_WEIGHTS) restricts the time of
    day; ``arrange`` may move the planned vehicles (several in one frame must not stand in
    one spot). With the defaults and at most one vehicle this draws exactly what
    ``render_frame`` always drew: the same seed gives the same bytes. ``vehicle_rng`` (default:
    drawn from ``rng``) places and shapes the vehicles: a fixed ``rng`` with a new
    ``vehicle_rng`` per frame is one camera's fixed view with the traffic changing
    (``training.data.scene_tamper``).
    """
    # The vehicle draws from its own stream, so one seed gives the same street, light and noise
    # for every label: only the vehicle differs between a "bus", a "car" and an "empty" frame.
    own_vehicle_rng = np.random.default_rng(int(rng.integers(2**63)))
    vehicle_rng = own_vehicle_rng if vehicle_rng is None else vehicle_rng
    if lightings is None:
        light = LIGHTINGS[rng.choice(len(LIGHTINGS), p=LIGHTING_WEIGHTS)]
    else:
        weights = np.array([LIGHTING_WEIGHTS[LIGHTINGS.index(light)] for light in lightings])
        light = lightings[rng.choice(len(lightings), p=weights / weights.sum())]
    # The scene is drawn at half resolution and scaled up: twice as fast, and the slight
    # softness is what a street camera's small sensor and lens give anyway.
    scene_w, scene_h = max(1, width // 2), max(1, height // 2)
    camera = Camera(
        width=scene_w,
        height_px=scene_h,
        focal=scene_w * rng.uniform(0.85, 1.2),
        horizon=scene_h * rng.uniform(0.04, 0.22),
        centre_x=scene_w * rng.uniform(0.42, 0.58),
        height=rng.uniform(3.5, 5.5),
    )
    road_half = rng.choice([1, 2, 3]) * 3.5 / 2 + rng.uniform(0, 1.5)  # 1-3 lanes per direction
    road_centre = rng.uniform(-0.6, 0.6) * road_half
    scene = Scene(camera, light, rng, vehicle_rng, road_centre - road_half, road_centre + road_half)

    image = background(camera, light, rng)
    draw = ImageDraw.Draw(image)
    scene.skyline(draw)
    scene.ground(draw)
    scene.facades(draw)
    # the camera meters the street, not the traffic: the exposure is the same with or without a vehicle
    metered = float(np.mean(ImageStat.Stat(image).mean))
    # Painter's algorithm, far to near: street furniture behind a vehicle, the vehicle, then
    # whatever stands in front of it (a partial occlusion).
    things = sorted(
        scene.street_furniture(near=False) + scene.street_furniture(near=True), key=lambda t: -t.z
    )
    planned = [scene.plan_vehicle(label) for label in vehicles]
    if arrange is not None:
        planned = arrange(scene, planned)
    pending = sorted(planned, key=lambda v: -v.box.z0)
    for thing in things:
        while pending and thing.z < pending[0].box.z0:
            scene.draw_vehicle(draw, pending.pop(0))
        scene.draw_furniture(draw, thing)
    for vehicle in pending:
        scene.draw_vehicle(draw, vehicle)

    image = expose(image, light, metered, rng)
    scene.draw_glow(ImageDraw.Draw(image))
    image = image.resize((width, height), Image.Resampling.BILINEAR)
    timestamp(image, rng)
    return image


def frame_seed(seed: int, label: str, index: int) -> int:
    """Stable per-frame seed (crc32, not ``hash()``, so it is the same in every process)."""
    return int(np.random.SeedSequence([seed, zlib.crc32(label.encode()), index]).generate_state(1)[0])


def frame_jpeg(label: str, seed: int, width: int = 1280, height: int = 720, quality: int = 85) -> bytes:
    """The JPEG bytes of one frame; the same arguments always give the same bytes."""
    return _jpeg(render_frame(label, np.random.default_rng(seed), width, height), quality)


def _jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def write_dataset(
    root: str | Path,
    per_label: int | dict[str, int],
    *,
    seed: int = 0,
    labels: tuple[str, ...] | list[str] = LABELS,
    width: int = 1280,
    height: int = 720,
    progress: bool = False,
) -> dict[str, int]:
    """Write ``root/<label>/<label>-<seed>-<i:05d>.jpg``; returns the count written per label."""
    counts = per_label if isinstance(per_label, dict) else {label: per_label for label in labels}
    unknown = sorted(set(counts) - set(LABELS))
    if unknown:
        raise ValueError(f"unknown label(s) {unknown}: synthetic frames exist for {', '.join(LABELS)}")

    def frame(label: str, i: int) -> bytes:
        return frame_jpeg(label, frame_seed(seed, label, i), width, height)

    return _write_folders(root, counts, frame, seed=seed, what="synthetic frames", progress=progress)


def _write_folders(
    root: str | Path,
    counts: dict[str, int],
    frame: Callable[[str, int], bytes],
    *,
    seed: int,
    what: str,
    progress: bool,
) -> dict[str, int]:
    """``root/<folder>/<folder>-<seed>-<i:05d>.jpg`` = ``frame(folder, i)`` for ``counts[folder]`` frames."""
    root = Path(root)
    jobs = [(folder, i) for folder in counts for i in range(counts[folder])]
    for folder in counts:
        (root / folder).mkdir(parents=True, exist_ok=True)

    def write_one(job: tuple[str, int]) -> None:
        folder, i = job
        (root / folder / f"{folder}-{seed}-{i:05d}.jpg").write_bytes(frame(folder, i))

    for_each(jobs, write_one, f"writing {what} to {root}", total=len(jobs), progress=progress)
    return dict(counts)


def for_each(
    items: Iterable[T], work: Callable[[T], None], description: str, *, total: int, progress: bool
) -> None:
    """``work(item)`` for each item in order, under a progress bar when asked."""
    if not progress:
        for item in items:
            work(item)
        return
    from rich.progress import Progress

    with Progress() as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            work(item)
            bar.advance(task)


def renderer_source_digest(modules: tuple[str, ...] = RENDERER_MODULES) -> str:
    """sha256 of the renderer's source: frames cached under it are redrawn when the code changes."""
    digest = hashlib.sha256()
    for name in modules:
        digest.update(Path(importlib.import_module(name).__file__).read_bytes())
    return digest.hexdigest()


# --- multi-label frames --------------------------------------------------------------------

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
    return _jpeg(render_multilabel_frame(labels, np.random.default_rng(seed), width, height), quality)


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

    def frame(name: str, i: int) -> bytes:
        return multilabel_frame_jpeg(folders[name], frame_seed(seed, "multilabel/" + name, i), width, height)

    return _write_folders(
        root, counts, frame, seed=seed, what="multi-label synthetic frames", progress=progress
    )
