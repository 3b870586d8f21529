"""The camera and the light of a synthetic street frame (see ``training.data.synthetic``).

Times of day (sky, glow, exposure limits), the pinhole camera a few metres above the road, the
sky/pavement background, the camera's auto-exposure and sensor noise, and the on-screen
timestamp; plus the colour helpers every part of the scene draws with. Everything random comes
from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFont

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


def background(camera: Camera, light: Lighting, rng: np.random.Generator) -> Image.Image:
    """Sky gradient above the horizon, pavement colour below (the road is drawn on top)."""
    horizon = int(camera.horizon)
    ramp = np.linspace(0.0, 1.0, horizon, dtype=np.float32)[:, None] ** 0.8
    sky = (1 - ramp) * np.array(light.sky_top, np.float32) + ramp * np.array(light.sky_horizon, np.float32)
    pavement = np.array(jitter((150, 148, 140), rng, 10), np.float32)
    rows = np.concatenate([sky, np.repeat(pavement[None, :], camera.height_px - horizon, axis=0)])
    # one column, stretched sideways by Pillow (much faster than repeating it in numpy)
    column = Image.fromarray(rows.astype(np.uint8)[:, None, :])
    return column.resize((camera.width, camera.height_px), Image.Resampling.NEAREST)


def jitter(colour: Colour, rng: np.random.Generator, amount: int) -> Colour:
    offsets = rng.integers(-amount, amount + 1, size=3)
    return tuple(min(255, max(0, c + int(o))) for c, o in zip(colour, offsets, strict=True))


def shade(colour: Colour, factor: float) -> Colour:
    return tuple(int(min(255, c * factor)) for c in colour)


def expose(image: Image.Image, light: Lighting, metered: float, rng: np.random.Generator) -> Image.Image:
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
    return sensor_noise(image, amplitude, rng)


def sensor_noise(image: Image.Image, amplitude: int, rng: np.random.Generator) -> Image.Image:
    """Luminance noise of +-``amplitude`` at half resolution, upsampled (fast: in C)."""
    w, h = image.size
    noise = rng.integers(0, 2 * amplitude + 1, size=((h + 1) // 2, (w + 1) // 2), dtype=np.uint8)
    noise_image = Image.fromarray(noise).resize((w, h), Image.Resampling.NEAREST).convert("RGB")
    return ImageChops.add(image, noise_image, scale=1.0, offset=-amplitude)


_FONT_CACHE: dict[int, ImageFont.ImageFont | ImageFont.FreeTypeFont] = {}


def font(size: int):
    # Caching a font is not random state: it only avoids reloading the same file per frame.
    if size not in _FONT_CACHE:
        _FONT_CACHE[size] = ImageFont.load_default(size=size)
    return _FONT_CACHE[size]


def timestamp(image: Image.Image, rng: np.random.Generator) -> None:
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
    draw.text((size // 2 + 1, size // 2 + 1), text, fill=(0, 0, 0), font=font(size))
    draw.text((size // 2, size // 2), text, fill=(240, 240, 240), font=font(size))
