"""The difference hash of a frame (imagehash.dhash's algorithm, Pillow + numpy only).

Shared by training (near-duplicate groups, training/features/neardup.py) and by the function's featurize
mode, which stores each frame's hash beside its features so that training from feature shards
groups frames exactly as training from pixels does. Bit-identical to ``imagehash.dhash``: the
frame in greyscale, resized to (hash_size + 1) x hash_size with Lanczos; bit = a pixel is
brighter than its left neighbour.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

HASH_SIZE = 16


def dhash(pixels: np.ndarray, hash_size: int = HASH_SIZE) -> np.ndarray:
    """bool [hash_size * hash_size] of one uint8 RGB image."""
    if hash_size < 2:
        raise ValueError("hash_size must be at least 2")
    grey = (
        Image.fromarray(np.asarray(pixels))
        .convert("L")
        .resize((hash_size + 1, hash_size), Image.Resampling.LANCZOS)
    )
    values = np.asarray(grey)
    return (values[:, 1:] > values[:, :-1]).ravel()


def to_hex(bits: np.ndarray) -> str:
    return np.packbits(np.asarray(bits, dtype=bool)).tobytes().hex()


def from_hex(text: str, hash_size: int = HASH_SIZE) -> np.ndarray:
    return np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8))[: hash_size * hash_size].astype(
        bool
    )
