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
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFont, ImageStat

LABELS = ("bus", "car", "empty")

Colour = tuple[int, int, int]
Point = tuple[float, float]


@dataclass(frozen=True)
class Lighting:
    name: str
    sky_top: Colour
    sky_horizon: Colour
    gain: float  # exposure applied to everything that does not glow
    tint: Colour  # added after the gain (haze / colour cast)
    lights_on: bool  # headlights, lit windows and street lamps glow


LIGHTINGS = (
    Lighting("day", (70, 128, 200), (185, 210, 235), 1.0, (0, 0, 0), False),
    Lighting("overcast", (140, 146, 156), (205, 206, 210), 0.85, (12, 12, 14), False),
    Lighting("dawn", (92, 110, 170), (250, 198, 160), 0.8, (14, 6, 0), False),
    Lighting("dusk", (58, 50, 112), (240, 150, 90), 0.62, (10, 2, 8), True),
    Lighting("night", (6, 9, 26), (34, 38, 64), 0.27, (2, 2, 6), True),
)
LIGHTING_WEIGHTS = (0.4, 0.2, 0.1, 0.15, 0.15)
# How far the camera's auto-exposure can brighten a dim scene (night stays night).
MAX_EXPOSURE_GAIN = {"dusk": 1.4, "night": 1.0}

# One palette for every vehicle; only the weights differ (colour alone must not give the label away).
VEHICLE_COLOURS: tuple[Colour, ...] = (
    (235, 235, 232),  # white
    (170, 172, 176),  # silver
    (95, 98, 104),  # grey
    (28, 29, 32),  # black
    (176, 30, 32),  # red
    (36, 70, 150),  # blue
    (40, 90, 60),  # green
    (232, 180, 30),  # yellow
    (220, 110, 30),  # orange
    (200, 185, 150),  # beige
)
CAR_COLOUR_WEIGHTS = (0.22, 0.2, 0.14, 0.16, 0.08, 0.08, 0.04, 0.02, 0.02, 0.04)
BUS_COLOUR_WEIGHTS = (0.24, 0.08, 0.06, 0.04, 0.16, 0.14, 0.08, 0.12, 0.04, 0.04)

ASPHALT: Colour = (78, 80, 84)
GLASS: Colour = (40, 52, 62)
TYRE: Colour = (22, 22, 24)


@dataclass(frozen=True)
class Camera:
    """Pinhole camera with a horizontal optical axis, ``height`` metres above flat ground.

    World: X to the right, Y up from the ground, Z forward (metres). A ground point projects
    to v = horizon + focal * height / Z, so apparent size grows linearly with (v - horizon).
    """

    width: int
    height_px: int
    focal: float
    horizon: float
    centre_x: float
    height: float

    def project(self, x: float, y: float, z: float) -> Point:
        return (self.centre_x + self.focal * x / z, self.horizon + self.focal * (self.height - y) / z)

    @property
    def nearest_visible_z(self) -> float:
        """Depth of the ground seen on the bottom row."""
        return self.focal * self.height / (self.height_px - self.horizon)


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
) -> Image.Image:
    """A frame with each of ``vehicles`` ("bus" / "car") in it, lit by one of ``lightings``.

    ``lightings`` (default: every time of day, with LIGHTING_WEIGHTS) restricts the time of
    day; ``arrange`` may move the planned vehicles (several in one frame must not stand in
    one spot). With the defaults and at most one vehicle this draws exactly what
    ``render_frame`` always drew: the same seed gives the same bytes.
    """
    # The vehicle draws from its own stream, so one seed gives the same street, light and noise
    # for every label: only the vehicle differs between a "bus", a "car" and an "empty" frame.
    vehicle_rng = np.random.default_rng(int(rng.integers(2**63)))
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

    image = _background(camera, light, rng)
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

    image = _expose(image, light, metered, rng)
    scene.draw_glow(ImageDraw.Draw(image))
    image = image.resize((width, height), Image.Resampling.BILINEAR)
    _timestamp(image, rng)
    return image


def frame_seed(seed: int, label: str, index: int) -> int:
    """Stable per-frame seed (crc32, not ``hash()``, so it is the same in every process)."""
    return int(np.random.SeedSequence([seed, zlib.crc32(label.encode()), index]).generate_state(1)[0])


def frame_jpeg(label: str, seed: int, width: int = 1280, height: int = 720, quality: int = 85) -> bytes:
    """The JPEG bytes of one frame; the same arguments always give the same bytes."""
    image = render_frame(label, np.random.default_rng(seed), width, height)
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
    root = Path(root)
    jobs = [(label, i) for label in counts for i in range(counts[label])]
    for label in counts:
        (root / label).mkdir(parents=True, exist_ok=True)

    def write_one(label: str, i: int) -> None:
        data = frame_jpeg(label, frame_seed(seed, label, i), width, height)
        (root / label / f"{label}-{seed}-{i:05d}.jpg").write_bytes(data)

    if progress:
        from rich.progress import Progress

        with Progress() as bar:
            task = bar.add_task(f"writing synthetic frames to {root}", total=len(jobs))
            for label, i in jobs:
                write_one(label, i)
                bar.advance(task)
    else:
        for label, i in jobs:
            write_one(label, i)
    return dict(counts)


# --- scene ------------------------------------------------------------------------------------


def _background(camera: Camera, light: Lighting, rng: np.random.Generator) -> Image.Image:
    """Sky gradient above the horizon, pavement colour below (the road is drawn on top)."""
    horizon = int(camera.horizon)
    ramp = np.linspace(0.0, 1.0, horizon, dtype=np.float32)[:, None] ** 0.8
    sky = (1 - ramp) * np.array(light.sky_top, np.float32) + ramp * np.array(light.sky_horizon, np.float32)
    pavement = np.array(_jitter((150, 148, 140), rng, 10), np.float32)
    rows = np.concatenate([sky, np.repeat(pavement[None, :], camera.height_px - horizon, axis=0)])
    # one column, stretched sideways by Pillow (much faster than repeating it in numpy)
    column = Image.fromarray(rows.astype(np.uint8)[:, None, :])
    return column.resize((camera.width, camera.height_px), Image.Resampling.NEAREST)


def _jitter(colour: Colour, rng: np.random.Generator, amount: int) -> Colour:
    offsets = rng.integers(-amount, amount + 1, size=3)
    return tuple(min(255, max(0, c + int(o))) for c, o in zip(colour, offsets, strict=True))


def _shade(colour: Colour, factor: float) -> Colour:
    return tuple(int(min(255, c * factor)) for c in colour)


class Scene:
    """The world of one frame: camera, road edges (metres) and the lights to draw after exposure."""

    def __init__(
        self,
        camera: Camera,
        light: Lighting,
        rng: np.random.Generator,
        vehicle_rng: np.random.Generator,
        road_left: float,
        road_right: float,
    ):
        self.camera = camera
        self.light = light
        self.rng = rng
        self.vehicle_rng = vehicle_rng
        self.road_left = road_left
        self.road_right = road_right
        self.far_z = 400.0
        self.glow: list[Callable[[ImageDraw.ImageDraw], None]] = []
        # where a shadow falls on the road (metres sideways, metres away), from the sun's bearing:
        # in direct sun a vehicle casts a long shadow, otherwise only a dark patch under it
        sun_x, sun_z = rng.uniform(-1.8, 1.8), rng.uniform(0.2, 2.5)
        self.sun = (sun_x, sun_z) if light.name in ("day", "dawn") else (0.0, 0.3)

    def ground_quad(self, x0: float, x1: float, z0: float, z1: float) -> list[Point]:
        p = self.camera.project
        return [p(x0, 0, z0), p(x1, 0, z0), p(x1, 0, z1), p(x0, 0, z1)]

    # background -------------------------------------------------------------------------------

    def skyline(self, draw: ImageDraw.ImageDraw) -> None:
        rng, cam = self.rng, self.camera
        px = cam.width / 1280  # skyline sizes are given in pixels of a 1280-wide frame
        x = -rng.uniform(0, 80) * px
        base = cam.horizon + 2
        while x < cam.width:
            w = rng.uniform(30, 160) * px
            h = rng.uniform(0.04, 0.24) * cam.height_px
            colour = _jitter((120, 118, 120) if rng.random() < 0.6 else (150, 130, 110), rng, 25)
            draw.rectangle([x, base - h, x + w, base], fill=colour)
            if rng.random() < 0.7:
                self._window_grid(
                    draw, x, base - h, w, h, colour, rows=int(h // (14 * px)), cols=int(w // (12 * px))
                )
            x += w + rng.uniform(-10, 25) * px

    def _window_grid(self, draw, x, top, w, h, wall: Colour, rows: int, cols: int) -> None:
        rng = self.rng
        if rows < 1 or cols < 1:
            return
        cw, rh = w / cols, h / rows
        dark = _shade(wall, 0.55)
        for r in range(rows):
            for c in range(cols):
                box = [
                    x + c * cw + cw * 0.25,
                    top + r * rh + rh * 0.25,
                    x + (c + 0.75) * cw,
                    top + (r + 0.7) * rh,
                ]
                if self.light.lights_on and rng.random() < 0.3:
                    self.glow.append(lambda d, box=box: d.rectangle(box, fill=(255, 214, 140)))
                else:
                    draw.rectangle(box, fill=dark)

    def ground(self, draw: ImageDraw.ImageDraw) -> None:
        cam, rng = self.camera, self.rng
        near = cam.nearest_visible_z * 0.5
        draw.polygon(
            self.ground_quad(self.road_left, self.road_right, near, self.far_z),
            fill=_jitter(ASPHALT, rng, 10),
        )
        # curbs
        curb = (190, 188, 182)
        for edge in (self.road_left, self.road_right):
            draw.polygon(self.ground_quad(edge - 0.25, edge, near, self.far_z), fill=curb)
        # lane markings: white dashes between lanes, solid lines along the edges
        lanes = max(1, round((self.road_right - self.road_left) / 3.5))
        lane_width = (self.road_right - self.road_left) / lanes
        paint = (225, 225, 215) if rng.random() < 0.85 else (230, 200, 60)
        for edge in (self.road_left + 0.4, self.road_right - 0.55):
            draw.polygon(self.ground_quad(edge, edge + 0.15, near, self.far_z), fill=paint)
        phase = rng.uniform(0, 9)
        for k in range(1, lanes):
            x = self.road_left + k * lane_width
            z = near - phase
            while z < 150:
                if z + 3 > near:
                    draw.polygon(self.ground_quad(x - 0.08, x + 0.08, max(z, near), z + 3), fill=paint)
                z += 9
        # crosswalk now and then
        if rng.random() < 0.25:
            z0 = cam.nearest_visible_z * rng.uniform(1.1, 2.0)
            x = self.road_left + 0.5
            while x < self.road_right - 0.5:
                draw.polygon(self.ground_quad(x, x + 0.5, z0, z0 + 3), fill=paint)
                x += 1.0

    def facades(self, draw: ImageDraw.ImageDraw) -> None:
        """Building fronts along the street, receding towards the vanishing point."""
        rng = self.rng
        for side in (-1, 1):
            if rng.random() < 0.35:
                continue
            setback = rng.uniform(4, 10)  # pavement, parking, front gardens
            x = self.road_left - setback if side < 0 else self.road_right + setback
            z = self.camera.nearest_visible_z * 0.3
            while z < 160:
                length = rng.uniform(8, 25)
                floors = int(rng.integers(2, 8))
                wall = _jitter(((150, 140, 128), (120, 118, 122), (170, 150, 120))[rng.integers(3)], rng, 20)
                self._facade(draw, x, z, z + length, floors * 3.2, wall, floors)
                z += length + rng.uniform(0, 3)

    def _facade(self, draw, x: float, z0: float, z1: float, height: float, wall: Colour, floors: int) -> None:
        p = self.camera.project
        draw.polygon([p(x, 0, z0), p(x, height, z0), p(x, height, z1), p(x, 0, z1)], fill=wall)
        window = _shade(wall, 0.5)
        step = 3.0
        bays = int((z1 - z0) / step)
        for f in range(floors):
            y0, y1 = f * 3.2 + 1.0, f * 3.2 + 2.4
            for b in range(bays):
                za, zb = z0 + b * step + 0.8, z0 + b * step + 2.2
                quad = [p(x, y0, za), p(x, y1, za), p(x, y1, zb), p(x, y0, zb)]
                if self.light.lights_on and self.rng.random() < 0.25:
                    self.glow.append(lambda d, quad=quad: d.polygon(quad, fill=(255, 210, 130)))
                else:
                    draw.polygon(quad, fill=window)

    def street_furniture(self, *, near: bool) -> list[Furniture]:
        """Poles, trees, signs and pedestrians; the ``near`` ones may stand in front of the vehicle."""
        rng = self.rng
        things = []
        count = int(rng.integers(0, 3)) if near else int(rng.integers(1, 5))
        for _ in range(count):
            side = -1 if rng.random() < 0.5 else 1
            kerb = self.road_left if side < 0 else self.road_right
            x = kerb + side * rng.uniform(0.5, 2.5)
            z = self.camera.nearest_visible_z * (rng.uniform(0.65, 1.4) if near else rng.uniform(1.5, 6.0))
            kind = rng.choice(["pole", "tree", "sign", "person"], p=[0.3, 0.3, 0.2, 0.2])
            if near and rng.random() < 0.2:
                # in the road itself: a pedestrian crossing or a sign on the median
                x = rng.uniform(self.road_left, self.road_right)
                kind = rng.choice(["person", "sign"])
            # each thing draws its details from its own stream, so the drawing order (which
            # depends on where the vehicle is) never changes the rest of the street
            things.append(Furniture(str(kind), x, z, int(rng.integers(2**63))))
        return things

    def draw_furniture(self, draw: ImageDraw.ImageDraw, thing: Furniture) -> None:
        getattr(self, f"_{thing.kind}")(draw, thing.x, thing.z, np.random.default_rng(thing.seed))

    def _pole(self, draw, x: float, z: float, rng: np.random.Generator) -> None:
        p = self.camera.project
        (xa, ya), (xb, yb) = p(x - 0.1, 0, z), p(x + 0.1, 8, z)
        draw.rectangle([xa, yb, max(xb, xa + 1), ya], fill=(70, 72, 76))
        arm_end = p(x + (1.5 if x < 0 else -1.5), 8, z)
        draw.line([(xa, yb), arm_end], fill=(70, 72, 76), width=max(1, int(xb - xa)))
        if self.light.lights_on:
            r = abs(p(x + 0.4, 8, z)[0] - p(x, 8, z)[0])
            lamp = [arm_end[0] - r, arm_end[1] - r / 3, arm_end[0] + r, arm_end[1] + r / 2]
            self.glow.append(lambda d: d.ellipse(lamp, fill=(255, 240, 200)))

    def _tree(self, draw, x: float, z: float, rng: np.random.Generator) -> None:
        p = self.camera.project
        (xa, ya), (xb, yb) = p(x - 0.15, 0, z), p(x + 0.15, 2.5, z)
        draw.rectangle([xa, yb, max(xb, xa + 1), ya], fill=(70, 52, 38))
        green = _jitter((52, 92, 48), rng, 20)
        for _ in range(6):
            cx, cy = p(x + rng.uniform(-1.2, 1.2), rng.uniform(3.0, 5.5), z)
            r = abs(p(x + rng.uniform(0.9, 1.6), 0, z)[0] - p(x, 0, z)[0])
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=_jitter(green, rng, 12))

    def _sign(self, draw, x: float, z: float, rng: np.random.Generator) -> None:
        p = self.camera.project
        (xa, ya), (xb, yb) = p(x - 0.05, 0, z), p(x + 0.05, 2.6, z)
        draw.rectangle([xa, yb, max(xb, xa + 1), ya], fill=(120, 120, 125))
        (sa, sb), (sc, sd) = p(x - 0.4, 3.2, z), p(x + 0.4, 2.4, z)
        colour = [(30, 90, 170), (200, 30, 30), (240, 240, 240), (30, 120, 60)][rng.integers(4)]
        if rng.random() < 0.5:
            draw.ellipse([sa, sb, sc, sd], fill=colour, outline=(240, 240, 240))
        else:
            draw.rectangle([sa, sb, sc, sd], fill=colour, outline=(240, 240, 240))

    def _person(self, draw, x: float, z: float, rng: np.random.Generator) -> None:
        p = self.camera.project
        tall = rng.uniform(1.55, 1.9)
        clothes = _jitter(
            ((40, 40, 60), (120, 30, 30), (60, 80, 50), (200, 200, 200))[rng.integers(4)], rng, 20
        )
        (la, lb), (lc, ld) = p(x - 0.15, 0.9, z), p(x + 0.15, 0, z)
        draw.rectangle([la, lb, lc, ld], fill=(35, 35, 45))
        (ta, tb), (tc, td) = p(x - 0.22, tall - 0.25, z), p(x + 0.22, 0.85, z)
        draw.rectangle([ta, tb, tc, td], fill=clothes)
        (ha, hb), (hc, hd) = p(x - 0.11, tall, z), p(x + 0.11, tall - 0.25, z)
        draw.ellipse([ha, hb, hc, hd], fill=_jitter((190, 150, 120), rng, 40))

    # the vehicle ----------------------------------------------------------------------------

    def plan_vehicle(self, label: str) -> Vehicle:
        rng, cam = self.vehicle_rng, self.camera
        if label == "bus":
            length, width, body_top = rng.uniform(10.5, 13), rng.uniform(2.5, 2.6), rng.uniform(3.0, 3.4)
            colour = VEHICLE_COLOURS[rng.choice(len(VEHICLE_COLOURS), p=BUS_COLOUR_WEIGHTS)]
            share, nearest = rng.uniform(0.34, 0.5), 0.6  # of the frame width; the front may leave the frame
        else:
            length, width, body_top = rng.uniform(3.9, 4.8), rng.uniform(1.72, 1.9), rng.uniform(0.85, 1.0)
            colour = VEHICLE_COLOURS[rng.choice(len(VEHICLE_COLOURS), p=CAR_COLOUR_WEIGHTS)]
            share, nearest = rng.uniform(0.26, 0.34), 0.8
        if rng.random() < 0.05:  # now and then further down the road
            share *= rng.uniform(0.6, 0.8)
        colour = _jitter(colour, rng, 10)
        # A traffic camera watches the traffic coming at it: the vehicle is close, its near face
        # spans ``share`` of the frame width (less when that would put it under the camera).
        z = max(cam.focal * width / (share * cam.width), cam.nearest_visible_z * nearest)
        lanes = max(1, round((self.road_right - self.road_left) / 3.5))
        lane_width = (self.road_right - self.road_left) / lanes
        x = self.road_left + (int(rng.integers(lanes)) + 0.5) * lane_width + rng.uniform(-0.4, 0.4)
        # keep the near face inside the frame (the camera is aimed at the lanes it watches)
        u = min(max(cam.centre_x + cam.focal * x / z, cam.width * 0.25), cam.width * 0.75)
        x = (u - cam.centre_x) * z / cam.focal
        facing_camera = rng.random() < 0.5  # near face is the front (headlights) or the rear
        box = VehicleBox(x - width / 2, x + width / 2, z, z + length)
        return Vehicle(label, box, body_top, colour, facing_camera)

    def draw_vehicle(self, draw: ImageDraw.ImageDraw, vehicle: Vehicle) -> None:
        label, box, body_top, colour = vehicle.label, vehicle.box, vehicle.body_top, vehicle.colour
        facing_camera = vehicle.facing_camera
        # shadow on the road
        dx, dz = self.sun
        draw.polygon(
            self.ground_quad(box.x0 - 0.2 + min(dx, 0), box.x1 + 0.2 + max(dx, 0), box.z0 - 0.1, box.z1 + dz),
            fill=(38, 38, 40),
        )
        self._near_tyres(draw, box, label)
        if label == "bus":
            self._bus(draw, box, body_top, colour, facing_camera)
        else:
            self._car(draw, box, body_top, colour, facing_camera)
        self._side_wheels(draw, box, label)

    def _side_x(self, box: VehicleBox) -> float | None:
        """The x of the side face the camera sees (the one facing the optical axis), if any."""
        if box.x1 < 0:
            return box.x1
        if box.x0 > 0:
            return box.x0
        return None

    def _box(self, draw, box: VehicleBox, y0: float, y1: float, colour: Colour) -> None:
        """Roof, visible side and near face of an axis-aligned box, back to front."""
        p = self.camera.project
        x0, x1, z0, z1 = box.x0, box.x1, box.z0, box.z1
        if self.camera.height > y1:
            draw.polygon(
                [p(x0, y1, z0), p(x1, y1, z0), p(x1, y1, z1), p(x0, y1, z1)], fill=_shade(colour, 1.12)
            )
        side = self._side_x(box)
        if side is not None:
            draw.polygon(
                [p(side, y0, z0), p(side, y1, z0), p(side, y1, z1), p(side, y0, z1)],
                fill=_shade(colour, 0.86),
            )
        draw.polygon([p(x0, y0, z0), p(x1, y0, z0), p(x1, y1, z0), p(x0, y1, z0)], fill=colour)

    def _side_quad(self, box: VehicleBox, y0: float, y1: float, za: float, zb: float) -> list[Point] | None:
        side = self._side_x(box)
        if side is None:
            return None
        p = self.camera.project
        return [p(side, y0, za), p(side, y1, za), p(side, y1, zb), p(side, y0, zb)]

    def _near_rect(self, box: VehicleBox, xa: float, xb: float, y0: float, y1: float) -> list[Point]:
        p = self.camera.project
        return [p(xa, y0, box.z0), p(xb, y0, box.z0), p(xb, y1, box.z0), p(xa, y1, box.z0)]

    def _side_wheels(self, draw, box: VehicleBox, label: str) -> None:
        p = self.camera.project
        radius = _wheel_radius(label)
        axles = (0.18, 0.78) if label == "bus" else (0.17, 0.82)
        side = self._side_x(box)
        if side is not None:
            for fraction in axles:
                zc = box.z0 + fraction * (box.z1 - box.z0)
                (xa, ya), (xb, yb) = p(side, 2 * radius, zc - radius), p(side, 0, zc + radius)
                draw.ellipse([min(xa, xb), ya, max(xa, xb) + 1, yb], fill=TYRE)
                (ha, hb), (hc, hd) = (
                    p(side, 1.5 * radius, zc - radius / 2),
                    p(side, radius / 2, zc + radius / 2),
                )
                draw.ellipse([min(ha, hc), hb, max(ha, hc) + 1, hd], fill=(150, 150, 155))

    def _near_tyres(self, draw, box: VehicleBox, label: str) -> None:
        """Tyres seen under the near face (drawn first: the body hides their top)."""
        radius = _wheel_radius(label)
        for xa, xb in ((box.x0 + 0.1, box.x0 + 0.4), (box.x1 - 0.4, box.x1 - 0.1)):
            draw.polygon(self._near_rect(box, xa, xb, 0, 2 * radius * 0.7), fill=TYRE)

    def _car(self, draw, box: VehicleBox, body_top: float, colour: Colour, facing_camera: bool) -> None:
        rng, p = self.vehicle_rng, self.camera.project
        length = box.z1 - box.z0
        roof = body_top + rng.uniform(0.45, 0.6)
        self._box(draw, VehicleBox(box.x0, box.x1, box.z0, box.z1), 0.25, body_top, colour)
        # cabin: narrower than the body, a raked windscreen (rear window) towards the camera, a
        # flat roof behind it and two side windows; seen from a raised camera the glass is large
        a, b = (0.26, 0.84) if facing_camera else (0.16, 0.76)
        x0, x1 = box.x0 + 0.12, box.x1 - 0.12
        z0, z1 = box.z0 + a * length, box.z0 + b * length
        rake = (z1 - z0) * rng.uniform(0.28, 0.36)
        side = self._side_x(box)
        if side is not None:
            side = x0 if side == box.x0 else x1
            draw.polygon(
                [p(side, body_top, z0), p(side, roof, z0 + rake), p(side, roof, z1), p(side, body_top, z1)],
                fill=_shade(colour, 0.86),
            )
            for fa, fb in ((0.08, 0.5), (0.55, 0.92)):
                za, zb = (
                    z0 + rake * 0.5 + fa * (z1 - z0 - rake * 0.5),
                    z0 + rake * 0.5 + fb * (z1 - z0 - rake * 0.5),
                )
                draw.polygon(
                    [
                        p(side, body_top + 0.06, za),
                        p(side, roof - 0.07, za),
                        p(side, roof - 0.07, zb),
                        p(side, body_top + 0.06, zb),
                    ],
                    fill=GLASS,
                )
        if self.camera.height > roof:
            draw.polygon(
                [p(x0, roof, z0 + rake), p(x1, roof, z0 + rake), p(x1, roof, z1), p(x0, roof, z1)],
                fill=_shade(colour, 1.12),
            )
        draw.polygon(
            [
                p(x0, body_top, z0),
                p(x1, body_top, z0),
                p(x1 - 0.05, roof, z0 + rake),
                p(x0 + 0.05, roof, z0 + rake),
            ],
            fill=colour,
        )
        draw.polygon(
            [
                p(x0 + 0.07, body_top + 0.03, z0 + 0.02 * rake),
                p(x1 - 0.07, body_top + 0.03, z0 + 0.02 * rake),
                p(x1 - 0.1, roof - 0.04, z0 + 0.92 * rake),
                p(x0 + 0.1, roof - 0.04, z0 + 0.92 * rake),
            ],
            fill=GLASS,
        )
        # black bumper and grille, lights and plate on the near face
        w = box.x1 - box.x0
        draw.polygon(self._near_rect(box, box.x0, box.x1, 0.25, 0.55), fill=(30, 31, 34))
        if facing_camera:
            draw.polygon(
                self._near_rect(box, box.x0 + 0.3 * w, box.x1 - 0.3 * w, 0.58, 0.8), fill=(30, 31, 34)
            )
        self._lights(draw, box, 0.62, 0.84, 0.32, facing_camera)
        draw.polygon(
            self._near_rect(box, box.x0 + 0.38 * w, box.x1 - 0.38 * w, 0.38, 0.5), fill=(230, 230, 220)
        )

    def _bus(self, draw, box: VehicleBox, body_top: float, colour: Colour, facing_camera: bool) -> None:
        rng = self.vehicle_rng
        self._box(draw, box, 0.3, body_top, colour)
        # a long row of side windows, and a door
        windows = int(rng.integers(7, 12))
        length = box.z1 - box.z0
        span = length / windows
        for k in range(windows):
            za, zb = box.z0 + k * span + 0.12, box.z0 + (k + 1) * span - 0.12
            quad = self._side_quad(box, 1.35, body_top - 0.35, za, zb)
            if quad:
                lit = self.light.lights_on and rng.random() < 0.8
                if lit:
                    self.glow.append(lambda d, quad=quad: d.polygon(quad, fill=(225, 215, 170)))
                else:
                    draw.polygon(quad, fill=GLASS)
        door_at = box.z0 + rng.uniform(0.08, 0.5) * length
        quad = self._side_quad(box, 0.35, body_top - 0.4, door_at, door_at + 1.1)
        if quad:
            draw.polygon(quad, fill=_shade(GLASS, 1.3), outline=(20, 20, 20))
        # stripe along the side
        quad = self._side_quad(box, 1.0, 1.15, box.z0, box.z1)
        if quad:
            draw.polygon(quad, fill=_shade(colour, 0.6))
        # near face: big windshield (front) or rear window, destination sign on the front
        top_glass = body_top - (0.45 if facing_camera else 0.3)
        draw.polygon(self._near_rect(box, box.x0 + 0.12, box.x1 - 0.12, 1.25, top_glass), fill=GLASS)
        if facing_camera:
            sign = self._near_rect(box, box.x0 + 0.25, box.x1 - 0.25, top_glass + 0.07, body_top - 0.08)
            draw.polygon(sign, fill=(20, 20, 20))
            text_colour = (255, 170, 40)
            inner = self._near_rect(box, box.x0 + 0.5, box.x1 - 0.9, top_glass + 0.12, body_top - 0.13)
            self.glow.append(lambda d: d.polygon(inner, fill=text_colour))
        self._lights(draw, box, 0.5, 0.75, 0.35, facing_camera)

    def _lights(self, draw, box: VehicleBox, y0: float, y1: float, inset: float, facing_camera: bool) -> None:
        colour = (250, 245, 215) if facing_camera else (210, 30, 30)
        glow = (255, 255, 235) if facing_camera else (255, 60, 50)
        for xa, xb in ((box.x0 + 0.08, box.x0 + inset), (box.x1 - inset, box.x1 - 0.08)):
            quad = self._near_rect(box, xa, xb, y0, y1)
            draw.polygon(quad, fill=colour)
            if self.light.lights_on:
                self.glow.append(lambda d, quad=quad: d.polygon(quad, fill=glow))

    def draw_glow(self, draw: ImageDraw.ImageDraw) -> None:
        """Lights are drawn after the exposure so that they stay bright at night."""
        for paint in self.glow:
            paint(draw)


def _wheel_radius(label: str) -> float:
    return 0.5 if label == "bus" else 0.32


@dataclass(frozen=True)
class VehicleBox:
    x0: float
    x1: float
    z0: float  # near face
    z1: float  # far end


@dataclass(frozen=True)
class Vehicle:
    label: str
    box: VehicleBox
    body_top: float  # metres: roof of a bus, waist line of a car (its cabin sits on top)
    colour: Colour
    facing_camera: bool  # the near face is the front (headlights) rather than the rear


@dataclass(frozen=True)
class Furniture:
    kind: str  # pole | tree | sign | person
    x: float
    z: float
    seed: int


# --- camera -----------------------------------------------------------------------------------


def _expose(image: Image.Image, light: Lighting, metered: float, rng: np.random.Generator) -> Image.Image:
    """Exposure + colour cast through a lookup table, then sensor noise (both in C, fast).

    Like a real traffic camera, auto-exposure brings the street towards a mid-grey, as far as
    its gain range allows: at dusk and at night it runs out of gain, so the frame stays dark
    (and noisier).
    """
    target = rng.uniform(100, 125)
    max_gain = MAX_EXPOSURE_GAIN.get(light.name, 2.6)
    gain = light.gain * min(max(target / max(1.0, metered * light.gain), 0.75), max_gain)
    tint = np.array(light.tint, np.float64) + rng.uniform(-4, 4, size=3)
    levels = np.arange(256, dtype=np.float64)
    table = np.clip(levels[None, :] * gain + tint[:, None], 0, 255).astype(np.uint8)  # [channel, level]
    image = image.point(table.ravel().tolist())
    # luminance noise at half resolution, upsampled: blotchy like a small sensor after JPEG
    amplitude = int(rng.integers(3, 9)) if not light.lights_on else int(rng.integers(6, 13))
    w, h = image.size
    noise = rng.integers(0, 2 * amplitude + 1, size=((h + 1) // 2, (w + 1) // 2), dtype=np.uint8)
    noise_image = Image.fromarray(noise).resize((w, h), Image.Resampling.NEAREST).convert("RGB")
    return ImageChops.add(image, noise_image, scale=1.0, offset=-amplitude)


_FONT_CACHE: dict[int, ImageFont.ImageFont | ImageFont.FreeTypeFont] = {}


def _font(size: int):
    # Caching a font is not random state: it only avoids reloading the same file per frame.
    if size not in _FONT_CACHE:
        _FONT_CACHE[size] = ImageFont.load_default(size=size)
    return _FONT_CACHE[size]


def _timestamp(image: Image.Image, rng: np.random.Generator) -> None:
    """On-screen display like real traffic cameras: camera name and capture time."""
    w, h = image.size
    size = max(10, h // 36)
    camera_no = int(rng.integers(1, 40))
    day, hour, minute, second = (
        int(rng.integers(1, 29)),
        int(rng.integers(0, 24)),
        int(rng.integers(60)),
        int(rng.integers(60)),
    )
    text = f"CAM {camera_no:02d}  2026-11-{day:02d} {hour:02d}:{minute:02d}:{second:02d}"
    draw = ImageDraw.Draw(image)
    draw.text((size // 2 + 1, size // 2 + 1), text, fill=(0, 0, 0), font=_font(size))
    draw.text((size // 2, size // 2), text, fill=(240, 240, 240), font=_font(size))
