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

import io
import json
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from functions.frames.keys import format_timestamp, frame_key
from training.data.scene_camera import LIGHTINGS, sensor_noise
from training.data.synthetic import LABELS, render_scene

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
    return sensor_noise(image, 3, rng)  # the frame's own noise: the view repeats its render's


def view_jpeg(view: int, label: str, index: int, *, tamper: str | None = None, quality: int = 85) -> bytes:
    """:func:`view_frame` at 1280 x 720 as JPEG bytes (what a camera uploads)."""
    buffer = io.BytesIO()
    view_frame(view, label, index, tamper=tamper).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _covered(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """Something right on the lens: one colour, shaded a little from one side to the other."""
    colour = rng.uniform(40, 150) * np.array([1.0, rng.uniform(0.8, 1.0), rng.uniform(0.6, 0.9)])
    ramp = np.linspace(1.0 - rng.uniform(0, 0.15), 1.0, width)[None, :, None]
    pixels = np.broadcast_to(colour[None, None, :] * ramp, (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


@dataclass(frozen=True)
class TamperPlan:
    """``camera_id`` suffers ``tamper`` from its frame ``start`` on."""

    camera_id: str
    tamper: str
    start: int


def tamper_of(plans: Sequence[TamperPlan], camera_id: str, index: int) -> str | None:
    """The tamper frame ``index`` of ``camera_id`` shows (None: a healthy frame)."""
    for plan in plans:
        if plan.camera_id == camera_id and index >= plan.start:
            return plan.tamper
    return None


def default_plans(cameras: Sequence[str], frames: int) -> list[TamperPlan]:
    """One tamper per camera, in :data:`TAMPERS` order, from half-way on; a fifth camera and
    every later one in five stays healthy (the false alarms' control)."""
    return [
        TamperPlan(camera_id, TAMPERS[index % 5], frames // 2)
        for index, camera_id in enumerate(cameras)
        if index % 5 < len(TAMPERS)
    ]


def write_tamper_set(
    out_dir: Path,
    *,
    cameras: int = 5,
    frames: int = 40,
    seed: int = 0,
    width: int = 1280,
    height: int = 720,
    seconds_per_frame: float = 0.5,
) -> dict[str, Any]:
    """``out_dir/<camera>/<capture time>.jpg`` (the function's default key layout under a prefix)
    for ``cameras`` fixed views, tampered as :func:`default_plans` says, and ``out_dir/truth.json``:
    every frame's camera, capture time, label and tamper. Returns the truth."""
    ids = [f"cam-{index + 1:02d}" for index in range(cameras)]
    plans = default_plans(ids, frames)
    start = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
    rng = np.random.default_rng(seed)
    truth: dict[str, Any] = {"plans": [asdict(plan) for plan in plans], "frames": []}
    for camera_id in ids:
        (out_dir / camera_id).mkdir(parents=True, exist_ok=True)
        view = view_seed(seed, camera_id)
        for index in range(frames):
            label = LABELS[int(rng.integers(len(LABELS)))]
            tamper = tamper_of(plans, camera_id, index)
            captured = start + timedelta(seconds=index * seconds_per_frame)
            name = frame_key("", camera_id, captured)
            view_frame(view, label, index, width, height, tamper=tamper).save(
                out_dir / name, "JPEG", quality=85
            )
            truth["frames"].append(
                {"file": name, "camera_id": camera_id, "index": index,
                 "captured_at": format_timestamp(captured), "label": label, "tamper": tamper}
            )  # fmt: skip
    (out_dir / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    return truth


def tamper_summary(out_dir: Path, *, frames: int, seed: int, width: int, height: int) -> Any:
    """`camsort synth --tamper`: write the set, return the table of what each camera suffers."""
    from rich.table import Table

    truth = write_tamper_set(out_dir, frames=frames, seed=seed, width=width, height=height)
    plans = {plan["camera_id"]: plan for plan in truth["plans"]}
    table = Table(
        "camera", "frames", "tamper", "from frame", "from", title=f"tampered camera views in {out_dir}"
    )
    for camera_id in sorted({frame["camera_id"] for frame in truth["frames"]}):
        plan = plans.get(camera_id)
        first = next(
            (f["captured_at"] for f in truth["frames"] if f["camera_id"] == camera_id and f["tamper"]), "-"
        )
        count = sum(f["camera_id"] == camera_id for f in truth["frames"])
        table.add_row(
            camera_id,
            str(count),
            plan["tamper"] if plan else "(none)",
            str(plan["start"]) if plan else "-",
            first,
        )
    return table
