"""A fixed camera over a car park: rows of bays that fill and empty, and a barrier gate.

The camera, the bays, the gate and the buildings behind are one *site* (``car_park``): fixed
by the site's seed, as a mounted camera's view is. What changes from frame to frame is what
changes in a real car park, drawn from the frame's own stream exactly as the street frames of
``training.data.synthetic`` draw it: the time of day (every lighting, with the same weights),
the camera's auto-exposure and sensor noise (``scene_camera.expose``), the sun's shadows, the
lit windows, the parked cars (the street frames' car shapes, palette and colour weights,
either way round, off-centre in their bay), people walking across the bays, now and then a
car driving along the aisle in front of the far row, and the on-screen timestamp. Nothing here
is easier than a street frame: a parked car fills less of the frame than a street frame's
car, neighbours and passers-by reach into a bay's box, and the near row hides the bottom of the
far row.

Each bay and the gate is a region (``functions.frames.regions``' JSON form): a box relative to
the frame (the projection of the bay's volume up to a car's roof, or of the gate's post and
both positions of its arm), answered by the named model ``bay`` (``empty`` | ``occupied``) or
``gate`` (``closed`` | ``open``). ``training.data.synthetic_regions`` writes labelled sets and
time-ordered sequences of these frames.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageStat

from training.data.scene import ASPHALT, Furniture, Scene
from training.data.scene_camera import (
    LIGHTING_WEIGHTS,
    LIGHTINGS,
    Camera,
    background,
    expose,
    jitter,
    timestamp,
)
from training.data.scene_vehicles import CAR_COLOUR_WEIGHTS, VEHICLE_COLOURS, Vehicle, VehicleBox

BAY_MODEL, GATE_MODEL = "bay", "gate"
EMPTY, OCCUPIED = "empty", "occupied"
CLOSED, OPEN = "closed", "open"
REGION_LABELS = {BAY_MODEL: (EMPTY, OCCUPIED), GATE_MODEL: (CLOSED, OPEN)}
GATE_REGION = "gate"
BAY_DEPTH = 5.2  # metres, kerb to kerb
CAR_ROOF = 1.65  # the box of a bay reaches a tall car's roof
BOOM_HEIGHT = 1.0  # the arm's pivot, metres above the ground
PAINT = (225, 225, 215)


@dataclass(frozen=True)
class Bay:
    name: str
    x0: float  # metres, left line
    x1: float  # right line
    z0: float  # the bay's front edge (towards the camera)


@dataclass(frozen=True)
class Gate:
    x: float  # the post
    z: float
    length: float  # of the arm
    side: int  # +1: the arm closes towards +x, -1 towards -x


@dataclass(frozen=True)
class CarPark:
    """One site: what a mounted camera always sees the same way."""

    camera_id: str
    seed: int
    camera: Camera
    bays: tuple[Bay, ...]
    gate: Gate
    lamps: tuple[float, ...]  # x of the lamp posts, on the line between the rows

    def regions(self) -> dict:
        """The camera's regions in ``functions.frames.regions``' JSON form (boxes relative)."""
        cam = self.camera
        regions = [
            {"name": bay.name, "box": _relative(cam, _bay_corners(bay)), "model": BAY_MODEL}
            for bay in self.bays
        ]
        regions.append(
            {"name": GATE_REGION, "box": _relative(cam, _gate_corners(self.gate)), "model": GATE_MODEL}
        )
        return {"regions": regions}

    def region_names(self) -> list[str]:
        return [bay.name for bay in self.bays] + [GATE_REGION]

    def model_of(self, region: str) -> str:
        return GATE_MODEL if region == GATE_REGION else BAY_MODEL


def car_park(camera_id: str, seed: int, *, bays: int = 8, width: int = 1280, height: int = 720) -> CarPark:
    """The site of ``seed``: a near and a far row of bays (``bays`` in all, at least 2) and a gate."""
    if bays < 2:
        raise ValueError(f"bays={bays}: a car park here has at least 2 bays (one per row)")
    rng = np.random.default_rng(seed)
    scene_w, scene_h = max(1, width // 2), max(1, height // 2)
    camera = Camera(
        width=scene_w,
        height_px=scene_h,
        focal=scene_w * rng.uniform(0.85, 1.05),
        horizon=scene_h * rng.uniform(0.06, 0.16),
        centre_x=scene_w * rng.uniform(0.45, 0.55),
        height=rng.uniform(5.0, 7.0),  # a car park's camera sits higher than a street's
    )
    near_count = bays - bays // 2
    width_m = rng.uniform(2.5, 2.7)
    near_z = camera.nearest_visible_z * rng.uniform(1.3, 1.5)
    far_z = near_z + BAY_DEPTH + rng.uniform(6.5, 8.0)  # the aisle between the rows
    shift = rng.uniform(-0.15, 0.15)  # of a row's width: the rows need not be centred on the camera
    rows = []
    for count, z0 in ((near_count, near_z), (bays - near_count, far_z)):
        left = -count * width_m / 2 + shift * count * width_m
        rows.append([(left + k * width_m, left + (k + 1) * width_m, z0) for k in range(count)])
    bay_list = tuple(
        Bay(f"bay{index + 1}", x0, x1, z0) for index, (x0, x1, z0) in enumerate(rows[0] + rows[1])
    )
    # The gate: at the entrance beside the near row, its arm across the entrance lane.
    side = 1 if shift < 0 else -1  # on the side the rows leave more room
    edge = rows[0][-1][1] if side > 0 else rows[0][0][0]
    length = rng.uniform(3.2, 4.0)
    post_x = edge + side * rng.uniform(1.2, 1.8)
    gate_z = near_z + rng.uniform(1.0, 3.0)
    post_x = _inside_frame(camera, post_x, length, side, gate_z)
    gate = Gate(post_x, gate_z, length, side)
    lamps = tuple(sorted(rng.uniform(-6, 6, size=int(rng.integers(1, 3)))))
    return CarPark(camera_id, seed, camera, bay_list, gate, lamps)


def _inside_frame(camera: Camera, post_x: float, length: float, side: int, z: float) -> float:
    """Move the post sideways until the post and the closed arm are inside the frame."""
    lo, hi = 0.04 * camera.width, 0.96 * camera.width

    def u(x: float) -> float:
        return camera.project(x, 0, z)[0]

    for _ in range(200):
        ends = sorted((u(post_x - side * 0.3), u(post_x + side * (length + 0.3))))
        if ends[0] >= lo and ends[1] <= hi:
            break
        post_x += -0.1 if ends[1] > hi else 0.1
    return post_x


def _bay_corners(bay: Bay) -> list[tuple[float, float, float]]:
    return [
        (x, y, z) for x in (bay.x0, bay.x1) for y in (0.0, CAR_ROOF) for z in (bay.z0, bay.z0 + BAY_DEPTH)
    ]


def _gate_corners(gate: Gate) -> list[tuple[float, float, float]]:
    far = gate.x + gate.side * gate.length
    return [
        (x, y, z)
        for x in (gate.x - gate.side * 0.3, far)
        for y in (0.0, BOOM_HEIGHT + gate.length)
        for z in (gate.z - 0.1, gate.z + 0.1)
    ]


def _relative(camera: Camera, corners: list[tuple[float, float, float]]) -> list[float]:
    points = [camera.project(*corner) for corner in corners]
    us, vs = [p[0] for p in points], [p[1] for p in points]
    left, right = min(us) / camera.width, max(us) / camera.width
    top, bottom = min(vs) / camera.height_px, max(vs) / camera.height_px
    clip = lambda value: round(min(1.0, max(0.0, value)), 4)  # noqa: E731
    return [clip(left), clip(top), clip(right), clip(bottom)]


# --- one frame ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParkedCar:
    """Which car stands in a bay: its own seed, so a sequence can keep the same car there."""

    seed: int


def render_car_park(
    site: CarPark,
    states: dict[str, str],
    rng: np.random.Generator,
    *,
    cars: dict[str, int] | None = None,
    width: int = 1280,
    height: int = 720,
) -> Image.Image:
    """One frame of ``site`` with each region in ``states`` (bay name -> empty | occupied, "gate" ->
    closed | open). ``cars`` (bay -> seed) keeps a bay's car from frame to frame; by default each
    frame parks new cars. Everything else is drawn from ``rng``."""
    _check_states(site, states)
    light = LIGHTINGS[rng.choice(len(LIGHTINGS), p=LIGHTING_WEIGHTS)]
    cam = site.camera
    # the site's own stream (buildings, ground paint) restarts each frame: the same view every time
    layout = np.random.default_rng(site.seed + 1)
    scene = Scene(cam, light, layout, rng, -20.0, 20.0, glow_rng=rng)
    scene.sun = (
        (rng.uniform(-1.8, 1.8), rng.uniform(0.2, 2.5)) if light.name in ("day", "dawn") else (0.0, 0.3)
    )
    image = background(cam, light, layout)
    draw = ImageDraw.Draw(image)
    scene.skyline(draw)
    _ground(scene, site, draw, layout)
    metered = float(np.mean(ImageStat.Stat(image).mean))

    drawables: list[tuple[float, Callable[[], None]]] = []
    for bay in site.bays:
        if states[bay.name] == OCCUPIED:
            seed = (cars or {}).get(bay.name)
            car_rng = rng if seed is None else np.random.default_rng(seed)
            vehicle = _parked_car(bay, car_rng)
            drawables.append((vehicle.box.z0, _vehicle_drawer(scene, draw, vehicle, car_rng)))
    if rng.random() < 0.25:  # a car driving along the aisle, in front of the far row
        vehicle = _passing_car(site, rng)
        drawables.append((vehicle.box.z0, _vehicle_drawer(scene, draw, vehicle, rng)))
    lamp_z = site.bays[0].z0 + BAY_DEPTH + 0.5
    for x in site.lamps:
        drawables.append((lamp_z, lambda x=x: scene.draw_furniture(draw, Furniture("pole", x, lamp_z, 0))))
    for thing in _passers_by(site, rng):
        drawables.append((thing.z, lambda thing=thing: scene.draw_furniture(draw, thing)))
    drawables.append((site.gate.z, lambda: _draw_gate(scene, draw, site.gate, states[GATE_REGION], rng)))
    for _, paint in sorted(drawables, key=lambda item: -item[0]):  # painter's algorithm, far to near
        paint()

    image = expose(image, light, metered, rng)
    scene.draw_glow(ImageDraw.Draw(image))
    image = image.resize((width, height), Image.Resampling.BILINEAR)
    timestamp(image, rng)
    return image


def _check_states(site: CarPark, states: dict[str, str]) -> None:
    for name in site.region_names():
        allowed = REGION_LABELS[site.model_of(name)]
        if states.get(name) not in allowed:
            raise ValueError(f"region {name!r}: state {states.get(name)!r}, expected one of {allowed}")


def _ground(scene: Scene, site: CarPark, draw: ImageDraw.ImageDraw, layout: np.random.Generator) -> None:
    near = site.camera.nearest_visible_z * 0.5
    draw.polygon(scene.ground_quad(-60, 60, near, scene.far_z), fill=jitter(ASPHALT, layout, 10))
    paint = PAINT if layout.random() < 0.85 else (230, 200, 60)
    for bay in site.bays:
        for x in (bay.x0, bay.x1):
            draw.polygon(scene.ground_quad(x - 0.06, x + 0.06, bay.z0, bay.z0 + BAY_DEPTH), fill=paint)
        back = bay.z0 + BAY_DEPTH
        draw.polygon(scene.ground_quad(bay.x0, bay.x1, back - 0.12, back), fill=paint)


def _parked_car(bay: Bay, rng: np.random.Generator) -> Vehicle:
    """The street frames' car dimensions and palette, off-centre in its bay, either way round."""
    length, width, body_top = rng.uniform(3.9, 4.8), rng.uniform(1.72, 1.9), rng.uniform(0.85, 1.0)
    colour = jitter(VEHICLE_COLOURS[rng.choice(len(VEHICLE_COLOURS), p=CAR_COLOUR_WEIGHTS)], rng, 10)
    centre = (bay.x0 + bay.x1) / 2 + rng.uniform(-0.3, 0.3)
    z0 = bay.z0 + rng.uniform(0.1, max(0.2, BAY_DEPTH - length - 0.05))
    box = VehicleBox(centre - width / 2, centre + width / 2, z0, z0 + length)
    return Vehicle("car", box, body_top, colour, bool(rng.random() < 0.5))


def _passing_car(site: CarPark, rng: np.random.Generator) -> Vehicle:
    far = [bay for bay in site.bays if bay.z0 > site.bays[0].z0]
    z = (far or list(site.bays))[0].z0 - rng.uniform(2.0, 5.0)
    x = rng.uniform(min(b.x0 for b in site.bays), max(b.x1 for b in site.bays))
    length, width = rng.uniform(3.9, 4.8), rng.uniform(1.72, 1.9)
    colour = jitter(VEHICLE_COLOURS[rng.choice(len(VEHICLE_COLOURS), p=CAR_COLOUR_WEIGHTS)], rng, 10)
    box = VehicleBox(x - width / 2, x + width / 2, z, z + length)
    return Vehicle("car", box, rng.uniform(0.85, 1.0), colour, bool(rng.random() < 0.5))


def _vehicle_drawer(scene: Scene, draw, vehicle: Vehicle, car_rng: np.random.Generator) -> Callable[[], None]:
    def paint() -> None:
        scene.vehicle_rng = car_rng  # a parked car's details come from its own stream
        scene.draw_vehicle(draw, vehicle)

    return paint


def _passers_by(site: CarPark, rng: np.random.Generator) -> list[Furniture]:
    """People walking across the car park, sometimes in front of a bay."""
    people = []
    lo, hi = min(b.x0 for b in site.bays) - 2, max(b.x1 for b in site.bays) + 2
    for _ in range(int(rng.choice([0, 1, 2, 3], p=[0.4, 0.35, 0.17, 0.08]))):
        bay = site.bays[int(rng.integers(len(site.bays)))]
        z = bay.z0 - rng.uniform(0.3, 2.5)
        people.append(Furniture("person", rng.uniform(lo, hi), z, int(rng.integers(2**63))))
    return people


def _draw_gate(
    scene: Scene, draw: ImageDraw.ImageDraw, gate: Gate, state: str, rng: np.random.Generator
) -> None:
    """A post and a striped boom: across the lane when closed, raised (70-88 degrees) when open."""
    p = scene.camera.project
    angle = math.radians(rng.uniform(70, 88) if state == OPEN else rng.uniform(0, 3))
    (xa, ya), (xb, yb) = p(gate.x - 0.15, 0, gate.z), p(gate.x + 0.15, BOOM_HEIGHT + 0.15, gate.z)
    draw.rectangle([xa, yb, max(xb, xa + 1), ya], fill=jitter((200, 190, 60), rng, 12))
    dx, dy = gate.side * math.cos(angle), math.sin(angle)
    half = 0.06  # the arm's half thickness, metres
    stripes = 7
    for k in range(stripes):
        a, b = k / stripes * gate.length, (k + 1) / stripes * gate.length
        corners = [
            (gate.x + dx * s - dy * gate.side * t, BOOM_HEIGHT + dy * s + dx * gate.side * t)
            for s, t in ((a, -half), (b, -half), (b, half), (a, half))
        ]
        colour = (205, 30, 30) if k % 2 == 0 else (235, 235, 230)
        draw.polygon([p(x, y, gate.z) for x, y in corners], fill=colour)
    if scene.light.lights_on:
        lamp = p(gate.x, BOOM_HEIGHT + 0.3, gate.z)
        r = max(1.0, abs(p(gate.x + 0.12, 0, gate.z)[0] - p(gate.x, 0, gate.z)[0]))
        colour = (255, 170, 40)  # the same lamp either way: the arm alone tells the state
        scene.glow.append(
            lambda d: d.ellipse([lamp[0] - r, lamp[1] - r, lamp[0] + r, lamp[1] + r], fill=colour)
        )
