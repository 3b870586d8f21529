"""What a frame says about its camera, not its content: light, contrast, focus, and the scene.

Pure (numpy + the shared dhash), computed from the pixels the function already decoded for the
model (the 224 x 224 RGB array), so it costs no second decode:

* ``brightness``: mean luma (ITU-R BT.601), 0-255. A camera with no light is dark;
* ``contrast``: standard deviation of luma. A covered lens is near-uniform;
* ``sharpness``: variance of the 4-neighbour Laplacian of luma. A defocused lens loses the
  high frequencies, so it collapses against the camera's own usual value (absolute values
  depend on the scene, which is why :mod:`functions.state.camera_health` compares each camera
  with its own history);
* ``fingerprint``: the 256-bit difference hash (:func:`functions.frames.dhash.dhash`, 16 x 16)
  of the frame: the layout of the scene's large shapes, unmoved by noise, light level or a
  little blur. A camera that was turned or bumped sees another layout: many bits differ.

Why 224 x 224 is enough (docs/camera-health.md has the figures): the frames are resized from
1280 x 720 by about 5.7x, which keeps edges of a sharp scene at one or two pixels: a defocus
that matters to the classifier (a Gaussian blur of radius 4 px or more at 1280 x 720) still
takes the Laplacian's variance to a fraction of the camera's usual value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from functions.frames.dhash import dhash, to_hex

FINGERPRINT_SIZE = 16  # 16 x 16 = 256 bits (8 x 8 cannot tell a passing bus from a turned camera)
FINGERPRINT_BITS = FINGERPRINT_SIZE * FINGERPRINT_SIZE
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class FrameHealth:
    """One frame's measures (rounded: they are stored in the result item)."""

    brightness: float
    contrast: float
    sharpness: float
    fingerprint: str  # hex of FINGERPRINT_BITS bits

    def to_item(self) -> dict[str, Any]:
        return {"b": self.brightness, "c": self.contrast, "s": self.sharpness, "f": self.fingerprint}

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> FrameHealth:
        return cls(float(item["b"]), float(item["c"]), float(item["s"]), str(item["f"]))


def measure(pixels: np.ndarray) -> FrameHealth:
    """The measures of one uint8 RGB frame (H x W x 3)."""
    rgb = np.asarray(pixels)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 3:
        raise ValueError(f"expected an RGB frame of at least 3 x 3 pixels, got shape {rgb.shape}")
    luma = rgb.astype(np.float32) @ _LUMA
    laplacian = luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:] - 4.0 * luma[1:-1, 1:-1]
    return FrameHealth(
        brightness=round(float(luma.mean()), 2),
        contrast=round(float(luma.std()), 2),
        sharpness=round(float(laplacian.var()), 1),
        fingerprint=to_hex(dhash(rgb, FINGERPRINT_SIZE)),
    )


def fingerprint_distance(a: str, b: str) -> int:
    """Differing bits between two fingerprints (hex)."""
    return int.bit_count(int(a, 16) ^ int(b, 16))
