"""A named model's training set: the crops of its regions, cut from labelled frames.

``load_region_dataset(root, regions, labels_file, model_name)``: every frame the labels file
names is fetched once and cut with ``functions.frames.image_loader.load_regions``, the one crop
function the Lambda function uses, with the WHOLE box list of the frame's camera (so the decode
scale is the function's, train = serve); each labelled region whose model is ``model_name``
becomes one training item (a crop, 224x224). Regions of other models are left out; a region of
this model without a label row is not labelled yet and is left out too (counted).

An item's ``uri`` is ``<frame uri>#<region>`` and its ``sha256`` that of the crop's pixels (the
feature cache key). ``frame_of`` keeps each crop's frame: cross-validation puts the crops of one
frame in one fold (``training.features.neardup.join_groups``), whatever their near-duplicate
groups say, since they share the light, the exposure and the noise of that frame.

An unreadable frame becomes one skip per labelled region with the loader's reason, as in
``training.data.loading``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from functions.env import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from functions.errors import BadInputError
from functions.frames.image_loader import load_regions
from functions.frames.regions import CameraConfig
from training.data.dataset import Dataset, validate_dataset
from training.data.label_files import DatasetError
from training.data.loading import (
    MISSING,
    UNREADABLE,
    Candidate,
    LabeledImage,
    MissingObject,
    SkippedImage,
    labelled_candidate,
    parse_s3_uri,
    run_parallel,
    s3_fetcher,
)
from training.data.region_labels import RegionLabel, camera_of, parse_cameras_config, parse_region_labels


@dataclass
class RegionDataset(Dataset):
    """A ``Dataset`` of crops; ``frame_of[i]`` is the frame item ``i`` was cut from."""

    frame_of: list[str] = field(default_factory=list)
    model_name: str = ""
    regions: list[str] = field(default_factory=list)  # the regions of the model, over every camera
    unlabelled: int = 0  # regions of the model that no row labels

    def same_fold_keys(self) -> list[str]:
        return list(self.frame_of)

    def summary(self) -> dict:
        return {
            **super().summary(),
            "model_name": self.model_name,
            "regions": list(self.regions),
            "frames": len(set(self.frame_of)),
            "unlabelled_regions": self.unlabelled,
        }


@dataclass(frozen=True)
class _Frame:
    candidate: Candidate
    config: CameraConfig
    labels: dict[str, str]  # region -> label, this model's regions only


def read_text(location: str, s3_client: Any, what: str) -> str:
    """A local or s3:// text file (a labels file, a regions config), or a DatasetError naming it."""
    try:
        if location.startswith("s3://"):
            bucket, key = parse_s3_uri(location)
            return s3_fetcher(s3_client, bucket, key.rstrip("/"))().decode("utf-8")
        return Path(location).expanduser().read_text(encoding="utf-8")
    except (OSError, MissingObject, UnicodeDecodeError) as exc:
        raise DatasetError(f"{location}: cannot read the {what} ({exc})") from exc


def read_cameras_config(location: str, s3_client: Any = None) -> dict[str, CameraConfig]:
    text = read_text(location, s3_client, "regions config")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{location}: not JSON ({exc}); write the regions config as JSON") from exc
    return parse_cameras_config(data, location)


def model_names(configs: dict[str, CameraConfig]) -> list[str]:
    return sorted({region.model for config in configs.values() for region in config.effective_regions()})


def load_region_dataset(
    root: str,
    regions: str,
    labels_file: str,
    model_name: str | None,
    *,
    min_per_label: int = 2,
    s3_client: Any = None,
    max_workers: int = 8,
    progress: bool = True,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> RegionDataset:
    """The crops of ``model_name``'s labelled regions (None: the only model the config names)."""
    configs = read_cameras_config(regions, s3_client)
    model_name = choose_model(configs, model_name, regions)
    rows = parse_region_labels(read_text(labels_file, s3_client, "region labels file"), labels_file)
    frames, unlabelled = _frames(root, configs, rows, model_name, labels_file, s3_client)

    def load_one(frame: _Frame) -> list[LabeledImage | SkippedImage]:
        return _crops(frame, max_bytes=max_bytes, max_pixels=max_pixels)

    results = run_parallel(load_one, frames, max_workers=max_workers, progress=progress, what=labels_file)
    flat = [item for per_frame in results for item in per_frame]
    items = sorted((r for r in flat if isinstance(r, LabeledImage)), key=lambda item: item.uri)
    skipped = sorted((r for r in flat if isinstance(r, SkippedImage)), key=lambda s: s.uri)
    names = sorted({r.name for c in configs.values() for r in c.effective_regions() if r.model == model_name})
    dataset = RegionDataset(
        items=items, skipped=skipped, labels=sorted({item.label for item in items} | {s.label for s in skipped}),
        source=f"{root} (regions {regions}, labels {labels_file})",
        frame_of=[item.uri.rsplit("#", 1)[0] for item in items], model_name=model_name, regions=names,
        unlabelled=unlabelled,
    )  # fmt: skip
    validate_dataset(dataset, min_per_label)
    return dataset


def choose_model(configs: dict[str, CameraConfig], model_name: str | None, source: str) -> str:
    names = model_names(configs)
    if model_name is None:
        if len(names) != 1:
            raise DatasetError(
                f"{source}: the regions use the models {', '.join(names)}; say which one to train with --model-name"
            )
        return names[0]
    if model_name not in names:
        raise DatasetError(
            f"{source}: no region uses the model {model_name!r} (the regions use {', '.join(names)}); "
            "check --model-name"
        )
    return model_name


def _frames(
    root: str,
    configs: dict[str, CameraConfig],
    rows: list[RegionLabel],
    model_name: str,
    source: str,
    s3_client,
) -> tuple[list[_Frame], int]:
    by_key: dict[str, dict[str, str]] = {}
    for row in rows:
        by_key.setdefault(row.key, {})[row.region] = row.label
    frames, unlabelled = [], 0
    for key, labels in by_key.items():
        config = camera_of(key, configs, source)
        regions = {region.name: region for region in config.effective_regions()}
        unknown = sorted(set(labels) - set(regions))
        if unknown:
            raise DatasetError(
                f"{source}: frame {key} labels region(s) {', '.join(unknown)}, which its camera "
                f"{config.camera_id} does not have ({', '.join(regions)}); fix the row or the regions config"
            )
        mine = {name: label for name, label in labels.items() if regions[name].model == model_name}
        unlabelled += sum(1 for r in regions.values() if r.model == model_name and r.name not in labels)
        if mine:
            frames.append(_Frame(labelled_candidate(root, key, "", s3_client), config, mine))
    if not frames:
        raise DatasetError(f"{source}: no row labels a region of the model {model_name!r}")
    return frames, unlabelled


def _crops(frame: _Frame, *, max_bytes: int, max_pixels: int) -> list[LabeledImage | SkippedImage]:
    """This frame's labelled crops of the model (or one skip per labelled region)."""
    uri = frame.candidate.uri

    def skips(reason: str, detail: str) -> list[LabeledImage | SkippedImage]:
        return [SkippedImage(f"{uri}#{name}", reason, detail, label) for name, label in frame.labels.items()]

    try:
        data = frame.candidate.fetch()
    except MissingObject as exc:
        return skips(MISSING, f"{uri}: {exc}; it was deleted while loading")
    except OSError as exc:
        return skips(
            UNREADABLE, f"{uri}: cannot read the file ({exc}); fix its permissions or the labels file"
        )
    regions = frame.config.effective_regions()
    try:
        crops = load_regions(
            data, [region.box for region in regions], source=uri, max_bytes=max_bytes, max_pixels=max_pixels
        )
    except BadInputError as exc:
        return skips(exc.reason, str(exc))
    items: list[LabeledImage | SkippedImage] = []
    for region, crop in zip(regions, crops, strict=True):
        if region.name in frame.labels:
            digest = hashlib.sha256(crop.tobytes()).hexdigest()
            items.append(LabeledImage(f"{uri}#{region.name}", frame.labels[region.name], digest, crop))
    return items


def label_counts(dataset: RegionDataset) -> dict[str, dict[str, int]]:
    """Crops per region and label (for the summary line)."""
    counts: dict[str, Counter] = {}
    for item in dataset.items:
        counts.setdefault(item.uri.rsplit("#", 1)[1], Counter())[item.label] += 1
    return {region: dict(sorted(c.items())) for region, c in sorted(counts.items())}
