"""One camera's fixed view, and the ways a camera gets tampered with (see ``training.data.synthetic``).

A real traffic camera looks at the same street all day: only the traffic, the sensor noise and
the light change. :func:`view_frame` draws that: the street, light and camera come from the
view's seed, the vehicle from the frame's own seed, and a little fresh sensor noise per frame.
The tampers a camera suffers (:data:`TAMPERS`), each drawn on the frame it spoils:

* ``covered``: a hand, a bag or spray paint over the lens: a near-uniform, slightly shaded frame;
* ``defocused``: the focus ring knocked or the dome fogged: a Gaussian blur (radius 0.6 % of
  the width: 8 px at 1280 x 720);
* ``moved``: the camera turned to another street: the same camera and light, another view;
* ``dark``: no light (a dead illuminator at night, a lens cap): a few percent of the light left.

Everything random comes from the seeds given: the same arguments give the same bytes.
"""

from __future__ import annotations

import zlib

import numpy as np
from PIL import Image, ImageFilter

from training.data.scene_camera import LIGHTINGS
from training.data.synthetic import render_scene

TAMPERS = ("covered", "defocused", "moved", "dark")
# A fixed camera is a daytime camera here: night is its own condition (``dark`` is its extreme).
DAY_LIGHTINGS = tuple(light for light in LIGHTINGS if light.name in ("day", "overcast", "dawn"))
DEFOCUS_RADIUS = 0.006  # of the frame's width
DARK_GAIN = 0.04
# The view a moved camera turns to: the same seed stream, another street.
_TURNED = 7_919


def view_seed(seed: int, camera_id: str) -> int:
    """One camera's view, stable across processes (crc32, not ``hash()``)."""
    return int(np.random.SeedSequence([seed, zlib.crc32(camera_id.encode())]).generate_state(1)[0])


def view_frame(
    view: int, label: str, index: int, width: int = 1280, height: int = 720, *, tamper: str | None = None
) -> Image.Image:
    """Frame ``index`` of the camera with view seed ``view``, showing ``label``, spoilt by ``tamper``."""
    if tamper is not None and tamper not in TAMPERS:
        raise ValueError(f"unknown tamper {tamper!r}: one of {', '.join(TAMPERS)}")
    scene_seed = view + _TURNED if tamper == "moved" else view
    image = render_scene(
        [] if label == "empty" else [label],
        np.random.default_rng(scene_seed),
        width,
        height,
        lightings=DAY_LIGHTINGS,
        vehicle_rng=np.random.default_rng([view, index]),
    )
    rng = np.random.default_rng([view, index, 1])
    if tamper == "covered":
        image = _covered(width, height, rng)
    elif tamper == "defocused":
        image = image.filter(ImageFilter.GaussianBlur(DEFOCUS_RADIUS * width))
    elif tamper == "dark":
        image = image.point(lambda level: int(level * DARK_GAIN))
    return _sensor_noise(image, rng)


def _covered(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """Something right on the lens: one colour, shaded a little from one side to the other."""
    colour = rng.uniform(40, 150) * np.array([1.0, rng.uniform(0.8, 1.0), rng.uniform(0.6, 0.9)])
    ramp = np.linspace(1.0 - rng.uniform(0, 0.15), 1.0, width)[None, :, None]
    pixels = np.broadcast_to(colour[None, None, :] * ramp, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _sensor_noise(image: Image.Image, rng: np.random.Generator, sigma: float = 2.0) -> Image.Image:
    """The frame's own noise (the view's render repeats its noise pattern in every frame)."""
    pixels = np.asarray(image, dtype=np.float32)
    pixels = pixels + rng.normal(0.0, sigma, size=pixels.shape[:2])[..., None]
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
