"""Augmented views of a frame for fine-tuning, suited to fixed cameras (pure: numpy + Pillow).

A fixed camera sees the same scene from the same place: what changes between its frames is the
light (time of day, weather, exposure), the colour balance and, a little, the framing (a
re-mounted or shaken camera). So the views are a horizontal flip, a small scale/crop jitter
(the crop keeps at least ``min_scale`` of each side and is resized back to the frame's size),
brightness, contrast and per-channel colour gains. No rotation or vertical flip: a fixed
camera never sees the street upside down.

View 0 is the frame itself; view ``v`` of a frame is a pure function of (pixels, seed, v), so
the frozen activations of every view can be cached by (content hash, view).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Augmentation:
    flip_probability: float = 0.5
    min_scale: float = 0.8  # the crop keeps >= 80 % of the width
    aspect_jitter: float = 0.1  # the crop's height/width ratio within +-10 % of the frame's
    brightness: float = 0.25  # pixel gain in [1 - b, 1 + b]
    contrast: float = 0.25  # spread around the mean in [1 - c, 1 + c]
    colour: float = 0.1  # per-channel gain in [1 - c, 1 + c]

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def key(self) -> str:
        """Identifies the recipe in cache keys: another recipe never reuses cached views."""
        return ",".join(f"{name}={value}" for name, value in sorted(asdict(self).items()))


DEFAULT_AUGMENTATION = Augmentation()


def augmented_view(
    pixels: np.ndarray, *, seed: int, view: int, augmentation: Augmentation = DEFAULT_AUGMENTATION
) -> np.ndarray:
    """View ``view`` of one uint8 [H, W, 3] frame: the frame itself for view 0."""
    if view == 0:
        return pixels
    rng = np.random.default_rng([seed, view])
    height, width = pixels.shape[:2]
    image = Image.fromarray(pixels)
    if rng.random() < augmentation.flip_probability:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    scale = rng.uniform(augmentation.min_scale, 1.0)
    crop_w = max(1, round(width * scale))
    aspect = rng.uniform(1 - augmentation.aspect_jitter, 1 + augmentation.aspect_jitter)
    crop_h = max(1, min(height, round(height * scale * aspect)))
    left = int(rng.integers(0, width - crop_w + 1))
    top = int(rng.integers(0, height - crop_h + 1))
    image = image.crop((left, top, left + crop_w, top + crop_h)).resize(
        (width, height), Image.Resampling.BILINEAR
    )
    values = np.asarray(image, dtype=np.float32)
    values = values * rng.uniform(1 - augmentation.brightness, 1 + augmentation.brightness)
    mean = values.mean()
    values = (values - mean) * rng.uniform(1 - augmentation.contrast, 1 + augmentation.contrast) + mean
    values = values * rng.uniform(1 - augmentation.colour, 1 + augmentation.colour, size=3)
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)
