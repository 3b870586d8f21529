"""A camera's regions: named boxes of its view, each answered by a named model.

Pure (no AWS, no Pillow): the configuration's form, its validation, and the two facts about a
box that decoding needs (its pixel rectangle and the JPEG draft reduction it allows). The ONE
crop function that training and the function share is ``image_loader.load_regions``, which
uses these.

A camera without regions has the whole frame as its only region, ``default``, answered by the
``default`` model: today's behaviour, keys and contracts.

Boxes are relative (0..1 of the upright frame, after EXIF orientation), so a camera that
changes resolution keeps its regions. The JSON form, as stored in the configuration object::

    {"regions": [{"name": "bay1", "box": [0.05, 0.55, 0.2, 0.95], "model": "bay",
                  "smoothing": {"k": 3}}]}
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from functions.errors import ConfigurationError
from functions.state.smoothing import Rule

DEFAULT_REGION = "default"
DEFAULT_MODEL = "default"
# Names appear in DynamoDB sort keys, tag values and file names: keep them plain.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
MAX_REGIONS = 32  # per camera; each region is one more crop per frame through its model
# JPEG draft reductions libjpeg offers (decode at 1/r of the stored size).
DRAFT_REDUCTIONS = (8, 4, 2, 1)


class RegionConfigError(ConfigurationError, ValueError):
    """A camera's region configuration is malformed (the message names the camera and the fix)."""


@dataclass(frozen=True)
class Box:
    """A rectangle in relative coordinates of the upright frame: 0 <= left < right <= 1, likewise top/bottom."""

    left: float
    top: float
    right: float
    bottom: float

    def pixels(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The rectangle on a ``width`` x ``height`` image, as Pillow's ``resize(box=...)`` takes it."""
        return (self.left * width, self.top * height, self.right * width, self.bottom * height)

    def short_side(self, width: int, height: int) -> float:
        """The box's shorter side in pixels of a ``width`` x ``height`` image."""
        return min((self.right - self.left) * width, (self.bottom - self.top) * height)

    def to_list(self) -> list[float]:
        return [self.left, self.top, self.right, self.bottom]


WHOLE_FRAME = Box(0.0, 0.0, 1.0, 1.0)


@dataclass(frozen=True)
class Region:
    name: str
    box: Box
    model: str = DEFAULT_MODEL
    # Overrides of the stage's smoothing rule for this region (validated: ``Rule.from_dict``).
    smoothing: Mapping[str, Any] | None = None


DEFAULT_REGIONS = (Region(DEFAULT_REGION, WHOLE_FRAME, DEFAULT_MODEL),)


@dataclass(frozen=True)
class CameraConfig:
    camera_id: str
    regions: tuple[Region, ...] = field(default_factory=tuple)

    def effective_regions(self) -> tuple[Region, ...]:
        """The regions a frame of this camera is answered for: the whole frame when none are set."""
        return self.regions or DEFAULT_REGIONS

    def models(self) -> set[str]:
        return {region.model for region in self.effective_regions()}


def parse_camera_config(
    data: Any,
    *,
    camera_id: str,
    known_models: Collection[str] | None = None,
    source: str = "regions configuration",
) -> CameraConfig:
    """The validated configuration, or ``RegionConfigError`` naming every problem found.

    ``known_models``: the deployment's named models (``None`` skips that check, e.g. when a
    file is validated away from any deployment).
    """
    where = f"{source} (camera {camera_id})"
    if not isinstance(data, dict) or set(data) - {"regions"}:
        raise RegionConfigError(
            f'{where}: expected an object {{"regions": [...]}}; fix the file and set it again'
        )
    raw_regions = data.get("regions") or []
    if not isinstance(raw_regions, list):
        raise RegionConfigError(f'{where}: "regions" must be a list; fix the file and set it again')
    if len(raw_regions) > MAX_REGIONS:
        raise RegionConfigError(f"{where}: {len(raw_regions)} regions, more than the limit of {MAX_REGIONS}")
    problems: list[str] = []
    regions: list[Region] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_regions):
        region = _parse_region(raw, f"region {index + 1}", problems)
        if region is None:
            continue
        if region.name in seen:
            problems.append(f"region {index + 1}: the name {region.name!r} is used twice")
        seen.add(region.name)
        if known_models is not None and region.model not in known_models:
            problems.append(
                f"region {region.name!r}: unknown model {region.model!r} "
                f"(this deployment has: {', '.join(sorted(known_models)) or 'none'})"
            )
        regions.append(region)
    if problems:
        raise RegionConfigError(f"{where}: " + "; ".join(problems) + "; fix the file and set it again")
    return CameraConfig(camera_id=camera_id, regions=tuple(regions))


def _parse_region(raw: Any, label: str, problems: list[str]) -> Region | None:
    if not isinstance(raw, dict):
        problems.append(f"{label}: expected an object with name, box and model")
        return None
    unknown = sorted(set(raw) - {"name", "box", "model", "smoothing"})
    if unknown:
        problems.append(f"{label}: unknown field(s) {', '.join(unknown)}")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        problems.append(
            f"{label}: name {name!r} must match {NAME_PATTERN.pattern} (lower case, digits, - and _)"
        )
        return None
    label = f"region {name!r}"
    model = raw.get("model", DEFAULT_MODEL)
    if not isinstance(model, str) or not NAME_PATTERN.fullmatch(model):
        problems.append(f"{label}: model {model!r} must match {NAME_PATTERN.pattern}")
        return None
    box = _parse_box(raw.get("box"), label, problems)
    smoothing = raw.get("smoothing")
    if smoothing is not None:
        try:
            if not isinstance(smoothing, dict):
                raise ConfigurationError("smoothing must be an object of rule fields")
            Rule.from_dict(smoothing, where=f"{label} smoothing")
        except ConfigurationError as exc:
            problems.append(f"{label}: {exc}")
            return None
    return None if box is None else Region(name=name, box=box, model=model, smoothing=smoothing)


def _parse_box(raw: Any, label: str, problems: list[str]) -> Box | None:
    if (
        not isinstance(raw, (list, tuple))
        or len(raw) != 4
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw)
    ):
        problems.append(f"{label}: box must be [left, top, right, bottom] in relative coordinates (0 to 1)")
        return None
    left, top, right, bottom = (float(v) for v in raw)
    if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in (left, top, right, bottom)):
        problems.append(
            f"{label}: box {list(raw)} is outside the frame (every value must be between 0 and 1)"
        )
        return None
    if right <= left or bottom <= top:
        problems.append(f"{label}: box {list(raw)} is empty (need left < right and top < bottom)")
        return None
    return Box(left, top, right, bottom)


def camera_config_to_dict(config: CameraConfig) -> dict[str, Any]:
    """The JSON form ``parse_camera_config`` reads back to an equal configuration."""
    regions = []
    for region in config.regions:
        entry: dict[str, Any] = {"name": region.name, "box": region.box.to_list(), "model": region.model}
        if region.smoothing is not None:
            entry["smoothing"] = dict(region.smoothing)
        regions.append(entry)
    return {"regions": regions}


def draft_reduction(boxes: Sequence[Box], width: int, height: int, size: int) -> int:
    """The largest JPEG draft reduction that still gives every box ``size`` pixels on its short side.

    ``width`` x ``height``: the upright frame at full resolution. For the whole frame alone this
    is today's choice (the largest r in 8/4/2/1 with short side // size >= r), so a camera
    without regions decodes exactly as before.
    """
    for reduction in DRAFT_REDUCTIONS:
        if all(box.short_side(width, height) >= reduction * size for box in boxes):
            return reduction
    return 1
