"""The street of a synthetic frame: skyline, road, facades, street furniture, and its vehicles.

:class:`Scene` is the world of one frame (camera, road edges in metres, the lights to draw after
the exposure); the vehicle half of it lives in ``training.data.scene_vehicles``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import ImageDraw

from training.data.scene_camera import Camera, Colour, Lighting, Point, jitter, shade
from training.data.scene_vehicles import VehicleDrawing

ASPHALT: Colour = (78, 80, 84)


class Scene(VehicleDrawing):
    """The world of one frame: camera, road edges (metres) and the lights to draw after exposure."""

    def __init__(
        self,
        camera: Camera,
        light: Lighting,
        rng: np.random.Generator,
        vehicle_rng: np.random.Generator,
        road_left: float,
        road_right: float,
        glow_rng: np.random.Generator | None = None,
    ):
        self.camera = camera
        self.light = light
        self.rng = rng
        # Which windows are lit: the scene's stream unless given (a fixed camera's buildings
        # stay put while its lit windows change from frame to frame: training.data.carpark)
        self.glow_rng = rng if glow_rng is None else glow_rng
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
            colour = jitter((120, 118, 120) if rng.random() < 0.6 else (150, 130, 110), rng, 25)
            draw.rectangle([x, base - h, x + w, base], fill=colour)
            if rng.random() < 0.7:
                self._window_grid(
                    draw, x, base - h, w, h, colour, rows=int(h // (14 * px)), cols=int(w // (12 * px))
                )
            x += w + rng.uniform(-10, 25) * px

    def _window_grid(self, draw, x, top, w, h, wall: Colour, rows: int, cols: int) -> None:
        if rows < 1 or cols < 1:
            return
        cw, rh = w / cols, h / rows
        dark = shade(wall, 0.55)
        for r in range(rows):
            for c in range(cols):
                box = [
                    x + c * cw + cw * 0.25,
                    top + r * rh + rh * 0.25,
                    x + (c + 0.75) * cw,
                    top + (r + 0.7) * rh,
                ]
                if self.light.lights_on and self.glow_rng.random() < 0.3:
                    self.glow.append(lambda d, box=box: d.rectangle(box, fill=(255, 214, 140)))
                else:
                    draw.rectangle(box, fill=dark)

    def ground(self, draw: ImageDraw.ImageDraw) -> None:
        cam, rng = self.camera, self.rng
        near = cam.nearest_visible_z * 0.5
        draw.polygon(
            self.ground_quad(self.road_left, self.road_right, near, self.far_z),
            fill=jitter(ASPHALT, rng, 10),
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
                wall = jitter(((150, 140, 128), (120, 118, 122), (170, 150, 120))[rng.integers(3)], rng, 20)
                self._facade(draw, x, z, z + length, floors * 3.2, wall, floors)
                z += length + rng.uniform(0, 3)

    def _facade(self, draw, x: float, z0: float, z1: float, height: float, wall: Colour, floors: int) -> None:
        p = self.camera.project
        draw.polygon([p(x, 0, z0), p(x, height, z0), p(x, height, z1), p(x, 0, z1)], fill=wall)
        window = shade(wall, 0.5)
        step = 3.0
        bays = int((z1 - z0) / step)
        for f in range(floors):
            y0, y1 = f * 3.2 + 1.0, f * 3.2 + 2.4
            for b in range(bays):
                za, zb = z0 + b * step + 0.8, z0 + b * step + 2.2
                quad = [p(x, y0, za), p(x, y1, za), p(x, y1, zb), p(x, y0, zb)]
                if self.light.lights_on and self.glow_rng.random() < 0.25:
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
        green = jitter((52, 92, 48), rng, 20)
        for _ in range(6):
            cx, cy = p(x + rng.uniform(-1.2, 1.2), rng.uniform(3.0, 5.5), z)
            r = abs(p(x + rng.uniform(0.9, 1.6), 0, z)[0] - p(x, 0, z)[0])
            draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=jitter(green, rng, 12))

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
        clothes = jitter(
            ((40, 40, 60), (120, 30, 30), (60, 80, 50), (200, 200, 200))[rng.integers(4)], rng, 20
        )
        (la, lb), (lc, ld) = p(x - 0.15, 0.9, z), p(x + 0.15, 0, z)
        draw.rectangle([la, lb, lc, ld], fill=(35, 35, 45))
        (ta, tb), (tc, td) = p(x - 0.22, tall - 0.25, z), p(x + 0.22, 0.85, z)
        draw.rectangle([ta, tb, tc, td], fill=clothes)
        (ha, hb), (hc, hd) = p(x - 0.11, tall, z), p(x + 0.11, tall - 0.25, z)
        draw.ellipse([ha, hb, hc, hd], fill=jitter((190, 150, 120), rng, 40))

    def draw_glow(self, draw: ImageDraw.ImageDraw) -> None:
        """Lights are drawn after the exposure so that they stay bright at night."""
        for paint in self.glow:
            paint(draw)


@dataclass(frozen=True)
class Furniture:
    kind: str  # pole | tree | sign | person
    x: float
    z: float
    seed: int
