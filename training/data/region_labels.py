"""Labels per region and the cameras' regions, as training reads them. Pure parsing.

A region labels file names, per row, a frame (its key: a path relative to the dataset root, or
an ``s3://`` URI), one of its camera's regions and that region's label:

* ``.jsonl`` / ``.ndjson``: ``{"key": "lot-01/0001.jpg", "region": "bay1", "label": "occupied"}``
  per line (``path`` is accepted for ``key``), what ``camsort synth --regions`` writes;
* ``.csv``: ``key,region,label`` (a header row is optional).

The cameras' regions come in ``functions.frames.regions``' JSON form, in one of two shapes:

* one camera's ``{"regions": [...]}`` (what ``camsort camera regions set`` takes): every frame
  is cut with these regions;
* ``{"cameras": {"<camera_id>": {"regions": [...]}, ...}}``: a frame belongs to the camera named
  by the first folder of its key (``<camera_id>/<name>.jpg``, the bucket's layout under the
  frames prefix).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from functions.frames.regions import CameraConfig, RegionConfigError, parse_camera_config
from training.data.label_files import JSONL_SUFFIXES, DatasetError

ANY_CAMERA = "*"  # the key of a single camera's regions, applied to every frame


@dataclass(frozen=True)
class RegionLabel:
    key: str
    region: str
    label: str


def parse_region_labels(text: str, name: str) -> list[RegionLabel]:
    """Rows of ``name``'s text (JSONL or CSV by suffix); a repeated (key, region) is refused."""
    rows = _jsonl(text, name) if name.lower().endswith(JSONL_SUFFIXES) else _csv(text, name)
    if not rows:
        raise DatasetError(f"{name}: no labelled regions; write one row per region: key, region, label")
    seen: dict[tuple[str, str], int] = {}
    for number, row in rows:
        first = seen.setdefault((row.key, row.region), number)
        if first != number:
            raise DatasetError(
                f"{name} line {number}: {row.key} region {row.region} is labelled again (first on line "
                f"{first}); keep one label per region of a frame"
            )
    return [row for _, row in rows]


def _checked(key: Any, region: Any, label: Any, where: str) -> RegionLabel:
    values = [str(value).strip() if value is not None else "" for value in (key, region, label)]
    for field_name, value in zip(("key", "region", "label"), values, strict=True):
        if not value:
            raise DatasetError(f"{where}: empty {field_name}; each row is key, region, label")
    return RegionLabel(*values)


def _jsonl(text: str, name: str) -> list[tuple[int, RegionLabel]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{name} line {number}"
        try:
            record = json.loads(line)
            key = record["key"] if "key" in record else record["path"]
            rows.append((number, _checked(key, record["region"], record["label"], where)))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DatasetError(
                f'{where}: expected {{"key": ..., "region": ..., "label": ...}} ({type(exc).__name__}: {exc})'
            ) from exc
    return rows


def _csv(text: str, name: str) -> list[tuple[int, RegionLabel]]:
    rows = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or not "".join(row).strip():
            continue
        if number == 1 and [cell.strip().lower() for cell in row[:3]] == ["key", "region", "label"]:
            continue
        if len(row) != 3:
            raise DatasetError(f"{name} line {number}: {len(row)} columns; each row is key,region,label")
        rows.append((number, _checked(*row, f"{name} line {number}")))
    return rows


def parse_cameras_config(data: Any, source: str, known_models=None) -> dict[str, CameraConfig]:
    """Camera id (or ``ANY_CAMERA``) -> its regions, from either JSON shape (module docstring)."""
    if not isinstance(data, Mapping):
        raise DatasetError(f"{source}: expected a JSON object with 'regions' or 'cameras'")
    try:
        if "cameras" in data:
            cameras = data["cameras"]
            if not isinstance(cameras, Mapping) or not cameras:
                raise DatasetError(f"{source}: 'cameras' must map each camera id to its {{'regions': [...]}}")
            return {
                str(camera): parse_camera_config(
                    config,
                    camera_id=str(camera),
                    known_models=known_models,
                    source=f"{source} camera {camera}",
                )
                for camera, config in cameras.items()
            }
        return {
            ANY_CAMERA: parse_camera_config(
                data, camera_id=ANY_CAMERA, known_models=known_models, source=source
            )
        }
    except RegionConfigError as exc:
        raise DatasetError(str(exc)) from exc


def camera_of(key: str, configs: Mapping[str, CameraConfig], source: str) -> CameraConfig:
    """The regions a frame is cut with: the only camera's, or the camera of its key's first folder."""
    if ANY_CAMERA in configs:
        return configs[ANY_CAMERA]
    relative = key.split("://", 1)[1].split("/", 1)[1] if key.startswith("s3://") else key
    parts = [part for part in relative.replace("\\", "/").split("/") if part]
    for part in parts[:-1]:  # the camera folder may sit under a prefix (frames/<camera>/...)
        if part in configs:
            return configs[part]
    raise DatasetError(
        f"{source}: frame {key} belongs to no camera of the regions config ({', '.join(sorted(configs))}); "
        "put it under <camera_id>/ or add its camera"
    )
