"""Frames no camsort model was trained on: the held-out sets the familiarity check is measured on.

Four kinds, each deterministic for a seed (the same seed gives the same bytes), none of them a
street seen by a traffic camera:

* ``photos`` -- photographs of other subjects: seeded crops (40-100 % of the side, mirrored at
  random) of the three photographs pinned with the training requirements and readable offline:
  matplotlib's ``grace_hopper.jpg`` (a portrait), scikit-learn's ``china.jpg`` (a temple) and
  ``flower.jpg`` (a flower). Crops of one photograph are correlated: the kind has three
  subjects, not ``count`` independent ones;
* ``noise`` -- sensor-like noise: uniform RGB noise, Gaussian noise around a random grey, and
  coarse blocky noise (noise drawn at 1/16 resolution and scaled up);
* ``uniform`` -- flat frames: black, white, and one random flat colour per frame, with a trace of
  noise (a lens cap, an overexposed or a dead sensor);
* ``scenes`` -- other scenes, drawn procedurally: a landscape (sky, hills, fields, trees), an
  interior (a room in one-point perspective with furniture) and a portrait-like frame (a head and
  shoulders in front of a blurred backdrop).

``unfamiliar_jpeg(kind, seed)`` gives one frame's JPEG bytes; ``unfamiliar_pixels(kind, count,
seed)`` loads ``count`` of them through the function's own loader (uint8 224x224, as the model
sees them).
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

KINDS = ("photos", "noise", "uniform", "scenes")
WIDTH, HEIGHT = 640, 360  # a small camera frame: the loader resizes to 224x224 anyway


def photograph_paths() -> list[Path]:
    """The photographs pinned with the training requirements (matplotlib, scikit-learn)."""
    import matplotlib
    import sklearn

    return [
        Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
        Path(sklearn.__file__).parent / "datasets" / "images" / "china.jpg",
        Path(sklearn.__file__).parent / "datasets" / "images" / "flower.jpg",
    ]


@cache
def _photograph(index: int) -> Image.Image:
    with Image.open(photograph_paths()[index]) as image:
        return image.convert("RGB")


def _photo(rng: np.random.Generator) -> Image.Image:
    photo = _photograph(int(rng.integers(len(photograph_paths()))))
    side = rng.uniform(0.4, 1.0)
    w, h = max(16, int(photo.width * side)), max(16, int(photo.height * side))
    x, y = int(rng.integers(0, photo.width - w + 1)), int(rng.integers(0, photo.height - h + 1))
    crop = photo.crop((x, y, x + w, y + h))
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return crop.resize((WIDTH, HEIGHT), Image.Resampling.BILINEAR)


def _noise(rng: np.random.Generator) -> Image.Image:
    style = int(rng.integers(3))
    if style == 0:
        pixels = rng.integers(0, 256, (HEIGHT, WIDTH, 3))
    elif style == 1:
        pixels = rng.normal(rng.uniform(40, 215), rng.uniform(10, 60), (HEIGHT, WIDTH, 3))
    else:
        coarse = rng.integers(0, 256, (HEIGHT // 16, WIDTH // 16, 3)).astype(np.uint8)
        return Image.fromarray(coarse).resize((WIDTH, HEIGHT), Image.Resampling.NEAREST)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _uniform(rng: np.random.Generator) -> Image.Image:
    style = int(rng.integers(3))
    colour = [(0, 0, 0), (255, 255, 255), tuple(int(c) for c in rng.integers(0, 256, 3))][style]
    pixels = np.asarray(colour, np.float64) + rng.normal(0, 1.5, (HEIGHT, WIDTH, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    red, green, blue = (int(c) for c in rng.integers(low, high, 3))
    return red, green, blue


def _landscape(rng: np.random.Generator, draw: ImageDraw.ImageDraw) -> None:
    horizon = int(HEIGHT * rng.uniform(0.3, 0.6))
    draw.rectangle([0, 0, WIDTH, horizon], fill=_colour(rng, 90, 230))
    for layer in range(3):  # hills, far to near
        base = horizon + layer * 25
        xs = np.linspace(0, WIDTH, 9)
        ys = base - rng.uniform(10, 80, len(xs))
        draw.polygon(
            [(0, HEIGHT), *zip(xs.tolist(), ys.tolist(), strict=True), (WIDTH, HEIGHT)],
            fill=_colour(rng, 20, 160),
        )
    for _ in range(int(rng.integers(3, 12))):  # trees
        x, y = float(rng.uniform(0, WIDTH)), float(rng.uniform(horizon, HEIGHT))
        size = rng.uniform(10, 50) * (y / HEIGHT)
        draw.rectangle([x - size / 8, y - size, x + size / 8, y], fill=(90, 60, 30))
        draw.ellipse([x - size / 2, y - 2 * size, x + size / 2, y - size * 0.8], fill=_colour(rng, 10, 120))


def _interior(rng: np.random.Generator, draw: ImageDraw.ImageDraw) -> None:
    cx, cy = WIDTH * rng.uniform(0.35, 0.65), HEIGHT * rng.uniform(0.35, 0.6)
    back = [cx - WIDTH * 0.25, cy - HEIGHT * 0.25, cx + WIDTH * 0.25, cy + HEIGHT * 0.2]
    wall, floor = _colour(rng, 120, 250), _colour(rng, 60, 200)
    draw.rectangle([0, 0, WIDTH, HEIGHT], fill=wall)
    draw.polygon([(0, HEIGHT), (back[0], back[3]), (back[2], back[3]), (WIDTH, HEIGHT)], fill=floor)
    draw.polygon(
        [(0, 0), (back[0], back[1]), (back[0], back[3]), (0, HEIGHT)], fill=tuple(int(c * 0.8) for c in wall)
    )
    draw.rectangle(back, outline=(40, 40, 40), width=2)
    for _ in range(int(rng.integers(2, 6))):  # furniture: boxes standing on the floor
        x = float(rng.uniform(0, WIDTH - 60))
        y = float(rng.uniform(back[3], HEIGHT))
        w, h = rng.uniform(40, 160), rng.uniform(30, 140)
        draw.rectangle([x, y - h, x + w, y], fill=_colour(rng, 20, 220), outline=(30, 30, 30))


def _portrait(rng: np.random.Generator, draw: ImageDraw.ImageDraw) -> None:
    draw.rectangle([0, 0, WIDTH, HEIGHT], fill=_colour(rng, 30, 200))
    for _ in range(6):  # a busy backdrop, blurred afterwards
        x, y = float(rng.uniform(0, WIDTH)), float(rng.uniform(0, HEIGHT))
        r = float(rng.uniform(30, 120))
        draw.ellipse([x - r, y - r, x + r, y + r], fill=_colour(rng))
    cx, head = WIDTH * rng.uniform(0.4, 0.6), HEIGHT * rng.uniform(0.18, 0.28)
    skin = (int(rng.uniform(90, 240)), int(rng.uniform(60, 190)), int(rng.uniform(40, 160)))
    draw.ellipse([cx - 2.2 * head, HEIGHT * 0.75, cx + 2.2 * head, HEIGHT * 1.6], fill=_colour(rng, 0, 200))
    draw.rectangle([cx - head * 0.35, HEIGHT * 0.55, cx + head * 0.35, HEIGHT * 0.8], fill=skin)
    top = HEIGHT * 0.12
    draw.ellipse([cx - head * 0.8, top, cx + head * 0.8, top + head * 2.2], fill=skin)
    draw.chord(
        [cx - head * 0.85, top - 5, cx + head * 0.85, top + head * 1.2], 180, 360, fill=_colour(rng, 0, 120)
    )
    eye_y = top + head * 1.05
    for side in (-1, 1):
        ex = cx + side * head * 0.32
        draw.ellipse([ex - 6, eye_y - 4, ex + 6, eye_y + 4], fill=(30, 20, 20))
    draw.line(
        [cx - head * 0.3, top + head * 1.65, cx + head * 0.3, top + head * 1.65], fill=(120, 40, 40), width=3
    )


def _scene(rng: np.random.Generator) -> Image.Image:
    image = Image.new("RGB", (WIDTH, HEIGHT))
    draw = ImageDraw.Draw(image)
    which = int(rng.integers(3))
    (_landscape, _interior, _portrait)[which](rng, draw)
    if which == 2:
        image = image.filter(ImageFilter.GaussianBlur(1.5))
    noise = rng.normal(0, 4, (HEIGHT, WIDTH, 3))
    return Image.fromarray(np.clip(np.asarray(image, np.float64) + noise, 0, 255).astype(np.uint8))


_RENDERERS: dict[str, Callable[[np.random.Generator], Image.Image]] = {
    "photos": _photo,
    "noise": _noise,
    "uniform": _uniform,
    "scenes": _scene,
}


def frame_seed(seed: int, kind: str, index: int) -> int:
    """Stable per-frame seed (crc32 of the kind, so the same in every process)."""
    return int(np.random.SeedSequence([seed, zlib.crc32(kind.encode()), index]).generate_state(1)[0])


def unfamiliar_jpeg(kind: str, seed: int, quality: int = 85) -> bytes:
    """One unfamiliar frame of ``kind`` as JPEG bytes; the same arguments give the same bytes."""
    if kind not in _RENDERERS:
        raise ValueError(f"unknown unfamiliar kind {kind!r}: choose one of {', '.join(KINDS)}")
    buffer = io.BytesIO()
    _RENDERERS[kind](np.random.default_rng(seed)).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def unfamiliar_pixels(kind: str, count: int, seed: int = 0) -> np.ndarray:
    """``count`` frames of ``kind``, loaded by the function's loader: uint8 [count, 224, 224, 3]."""
    from functions.frames.image_loader import load_image

    frames = [
        load_image(unfamiliar_jpeg(kind, frame_seed(seed, kind, i)), source=f"<unfamiliar {kind} {i}>")
        for i in range(count)
    ]
    return np.stack(frames) if frames else np.zeros((0, 224, 224, 3), np.uint8)
