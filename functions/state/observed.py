"""What of an invocation's committed results the camera state reads (pure: no AWS here).

Per camera (and per region of a camera with regions: a region item read as
``functions.frames.outputs.camera_view``), in arrival order: each ``ok`` result's frame (capture time, label, confidence; a
multi-label answer is a set, and a camera's state is one label, so it is left out) and its
health measures (``health``, written by the classifier from the decoded pixels). A camera with
regions and no region named ``default`` has its whole frame's measures on the frame item: they
feed the health of its ``state`` alone (``measured_only``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from functions.frames.image_health import FrameHealth
from functions.frames.regions import DEFAULT_REGION
from functions.state.smoothing import Frame


def frame_id(object_id: str, object_version: str) -> str:
    return f"{object_id}@{object_version}"


def state_confidence(confidence: float) -> float:
    """A frame's confidence as the state keeps it: floored to 6 decimals.

    Why floored: ``x >= t`` holds for the floored value exactly when it holds for ``x``, for
    every threshold ``t`` of at most 6 decimals (the smoothing's ``enter`` / ``exit``), so the
    smoothing decides as with the full value; and the window's 12 confidences take 8 characters
    each instead of 18 random digits that do not compress (the state item stays one write unit).
    """
    return math.floor(confidence * 1_000_000) / 1_000_000


@dataclass
class CameraBatch:
    camera_id: str
    frames: list[Frame] = field(default_factory=list)
    region: str = DEFAULT_REGION  # its own state item (docs/regions.md)
    measures: dict[str, FrameHealth] = field(default_factory=dict)  # by frame id
    # Frames (capture time, frame id) that feed the camera's health alone: a regions frame's whole frame.
    measured_only: list[tuple[str, str]] = field(default_factory=list)


def camera_batches(
    results: Iterable[dict[str, Any]], on_bad: Callable[[str, str, Exception], None]
) -> list[CameraBatch]:
    """The frames the state counts, by camera and region; ``on_bad(camera, frame id, error)`` for a
    result that cannot be read (it is left out: the result is committed, the next frames outvote it)."""
    batches: dict[tuple[str, str], CameraBatch] = {}
    for result in results:
        camera_id = result.get("camera_id")
        if result.get("status") != "ok" or not camera_id or not result.get("captured_at"):
            continue
        key = frame_id(result["object_id"], result["object_version"])
        if "label" not in result:
            if result.get("regions") and result.get("health"):  # a regions frame: the camera's health
                _measured_only(batches, camera_id, key, result, on_bad)
            continue
        try:
            frame = Frame(
                captured_at=result["captured_at"],
                key=key,
                label=str(result["label"]),
                confidence=state_confidence(float(result["confidence"])),
            )
        except (KeyError, TypeError, ValueError) as exc:
            on_bad(camera_id, key, exc)
            continue
        region = str(result.get("region") or DEFAULT_REGION)
        batch = batches.setdefault((camera_id, region), CameraBatch(camera_id, region=region))
        batch.frames.append(frame)
        try:
            if result.get("health"):
                batch.measures[key] = FrameHealth.from_item(result["health"])
        except (KeyError, TypeError, ValueError) as exc:  # the state still counts the frame
            on_bad(camera_id, f"{key} (health measures)", exc)
    return list(batches.values())


def _measured_only(
    batches: dict[tuple[str, str], CameraBatch],
    camera_id: str,
    key: str,
    result: dict[str, Any],
    on_bad: Callable[[str, str, Exception], None],
) -> None:
    """A regions frame item's whole-frame measures: the camera's health, in its ``state`` (no label to count)."""
    try:
        measured = FrameHealth.from_item(result["health"])
    except (KeyError, TypeError, ValueError) as exc:
        on_bad(camera_id, f"{key} (health measures)", exc)
        return
    batch = batches.setdefault((camera_id, DEFAULT_REGION), CameraBatch(camera_id))
    batch.measures[key] = measured
    batch.measured_only.append((str(result["captured_at"]), key))
