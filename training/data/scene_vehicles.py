"""The vehicles of a synthetic street frame: a bus or a car drawn as boxes in perspective.

Car and bus differ by *shape and size*, not by colour: both draw from the same palette, with
different but overlapping weights. :class:`VehicleDrawing` is the vehicle half of
``training.data.scene.Scene``: it plans where a vehicle stands and draws it (roof, side, near face,
wheels, windows, lights, shadow), from the scene's ``vehicle_rng``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import ImageDraw

from training.data.scene_camera import Camera, Colour, Lighting, Point, jitter, shade

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

GLASS: Colour = (40, 52, 62)
TYRE: Colour = (22, 22, 24)


def wheel_radius(label: str) -> float:
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


class VehicleDrawing:
    """Planning and drawing a vehicle; mixed into ``training.data.scene.Scene``, whose state it uses."""

    camera: Camera
    light: Lighting
    vehicle_rng: np.random.Generator
    road_left: float
    road_right: float
    sun: tuple[float, float]
    glow: list[Callable[[ImageDraw.ImageDraw], None]]

    def ground_quad(self, x0: float, x1: float, z0: float, z1: float) -> list[Point]:
        raise NotImplementedError

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
        colour = jitter(colour, rng, 10)
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
                [p(x0, y1, z0), p(x1, y1, z0), p(x1, y1, z1), p(x0, y1, z1)], fill=shade(colour, 1.12)
            )
        side = self._side_x(box)
        if side is not None:
            draw.polygon(
                [p(side, y0, z0), p(side, y1, z0), p(side, y1, z1), p(side, y0, z1)],
                fill=shade(colour, 0.86),
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
        radius = wheel_radius(label)
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
        radius = wheel_radius(label)
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
                fill=shade(colour, 0.86),
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
                fill=shade(colour, 1.12),
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
            draw.polygon(quad, fill=shade(GLASS, 1.3), outline=(20, 20, 20))
        # stripe along the side
        quad = self._side_quad(box, 1.0, 1.15, box.z0, box.z1)
        if quad:
            draw.polygon(quad, fill=shade(colour, 0.6))
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
