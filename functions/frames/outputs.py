"""What a decision becomes: the result items, the object's tags, the JSON answer.

One builder for every place that reports an answer (the S3 event path, the HTTP endpoint,
``camsort classify``), so a binary/multiclass answer and a multi-label answer have one shape
each, everywhere:

* one label (binary, multiclass): ``label``, ``top_label``, ``confidence``, ``probabilities``;
* multi-label: ``labels`` (every label at or above its threshold, manifest order, possibly
  empty), ``top_label``, ``confidence`` (the highest probability), ``probabilities`` (all).

Tags: S3 allows 10 tags per object and 256 characters per value, from a restricted
character set. A multi-label set goes into one tag, ``camsort-labels``, labels joined by
``+`` (``""`` for the empty set); when the joined set would exceed 256 characters the tag
holds the most probable labels that fit, followed by ``+...``, and the full set stays in the
results table.

The result items a frame writes: its own (``base_item`` + the answer) and, for a camera with
regions, one per region (docs/regions.md).

Keys. The frame item keeps today's key, ``(object_id, object_version)``: the commit point and the
unit of duplicates, ordering, audit accounting and backfill. A region's item sits in the same
partition at ``<frame sort key>#region#<name>`` (S3 version ids and ETags never hold ``#``, and a
backfill's ``<version>#<model version>`` key never holds ``#region#``); it carries no
``camera_id``/``captured_at``, so the camera index and the audit still see one item per frame,
and ``region_camera_id``/``region_captured_at`` instead.

Tags: S3 allows 10 per object and 256 characters per value, without ``;`` or ``,``; a regions
frame gets one tag, ``camsort-regions`` = ``bay1=occupied bay2=empty gate=open``, with as many
whole regions as fit followed by `` ...`` when they do not (the results table has them all).
Pure: no boto3.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from functions.frames.decision import Decision, LabelSetDecision
from functions.frames.image_health import measure
from functions.frames.keys import KeyInfo, format_timestamp, is_ahead
from functions.frames.regions import Region
from functions.stores.results import object_id, result_sort_key
from functions.stores.storage import TAG_PREFIX, StoredFrame, tag_value

if TYPE_CHECKING:
    from functions.frames.events import FrameEvent
    from functions.frames.model import ModelSession
    from functions.wiring import App

LABELS_TAG_SEP = "+"
TRUNCATED_MARK = "+..."
MAX_TAG_VALUE = 256


def answer_fields(decision: Decision | LabelSetDecision) -> dict[str, Any]:
    """The answer part of a result item (and of every JSON answer)."""
    if isinstance(decision, LabelSetDecision):
        return {
            "labels": list(decision.labels),
            "top_label": decision.top_label,
            "confidence": decision.confidence,
            "probabilities": dict(decision.probabilities),
        }
    return {
        "label": decision.label,
        "top_label": decision.top_label,
        "confidence": decision.confidence,
        "probabilities": dict(decision.probabilities),
    }


def labels_tag_value(decision: LabelSetDecision) -> str:
    """The label set as one S3 tag value (<= 256 characters, S3's tag character set)."""
    names = [tag_value(label) for label in decision.labels]
    joined = LABELS_TAG_SEP.join(names)
    if len(joined) <= MAX_TAG_VALUE:
        return joined
    by_probability = sorted(decision.labels, key=lambda label: -decision.probabilities.get(label, 0.0))
    kept: list[str] = []
    for name in map(tag_value, by_probability):
        candidate = LABELS_TAG_SEP.join([*kept, name])
        if len(candidate) + len(TRUNCATED_MARK) > MAX_TAG_VALUE:
            break
        kept.append(name)
    return LABELS_TAG_SEP.join(kept) + TRUNCATED_MARK


def answer_tags(decision: Decision | LabelSetDecision, model_version: str) -> dict[str, str]:
    """The tags the function puts on a classified object (3 tags whatever the task)."""
    if isinstance(decision, LabelSetDecision):
        answer = {f"{TAG_PREFIX}labels": labels_tag_value(decision)}
    else:
        answer = {f"{TAG_PREFIX}label": decision.label}
    return {
        **answer,
        f"{TAG_PREFIX}confidence": f"{decision.confidence:.4f}",
        f"{TAG_PREFIX}model-version": model_version,
    }


def label_text(item: dict[str, Any]) -> str:
    """A result item's answer for a table cell: the label, or the set as ``{bus, car}``."""
    if "labels" in item and item.get("labels") is not None:
        return "{" + ", ".join(item["labels"]) + "}"
    return item.get("label") or ""


REGION_SEPARATOR = "#region#"
REGIONS_TAG = f"{TAG_PREFIX}regions"
REGIONS_TAG_SEP = " "
REGIONS_TRUNCATED = " ..."
# What a region item carries instead of the frame's index fields (camera_id, captured_at).
_INDEX_FIELDS = ("camera_id", "captured_at", "key_captured_at")


def region_sort_key(frame_sort_key: str, region: str) -> str:
    """A region item's sort key: beside its frame item, ``<frame sort key>#region#<name>``."""
    return f"{frame_sort_key}{REGION_SEPARATOR}{region}"


def is_region_item(item: Mapping[str, Any]) -> bool:
    return "region" in item and REGION_SEPARATOR in str(item.get("object_version", ""))


def frame_tags(decision: Decision | LabelSetDecision, model: ModelSession) -> dict[str, str]:
    """The S3 tags of an ``ok`` frame (``functions.frames.outputs``: a label or a label set)."""
    return answer_tags(decision, model.manifest.model_version)


def measures_health(app: App) -> bool:
    """Whether result items carry the camera's health measures: health on in this stage, live
    results only (not a backfill's)."""
    states = app.camera_state
    return states is not None and states.health is not None and not app.result_model_version


def health_fields(app: App, pixels: np.ndarray | None) -> dict[str, Any] | None:
    """The whole frame's health measures as a result item stores them (``health``), or None."""
    return measure(pixels).to_item() if pixels is not None and measures_health(app) else None


def ok_item(
    base: dict[str, Any], decision: Decision | LabelSetDecision, latency_ms: float | None
) -> dict[str, Any]:
    """The result item of an ``ok`` frame: ``base_item`` plus the answer (``label`` or ``labels``)."""
    return base | {"status": "ok", **answer_fields(decision), "latency_ms": latency_ms}


def base_item(
    frame: FrameEvent,
    app: App,
    *,
    object_version: str,
    key_info: KeyInfo | None,
    stored: StoredFrame | None,
    size: int | None,
) -> dict[str, Any]:
    """The fields every result item has, whatever its status (public: the bench writes the same items)."""
    model = app.model
    captured = key_info.captured_at if key_info else None
    # Trusted within the skew of the upload (LastModified; before a download, the event time,
    # which S3 sets alike): a camera clock running ahead falls back to LastModified.
    uploaded = stored.last_modified if stored is not None else _event_moment(frame)
    skew = timedelta(seconds=app.settings.capture_skew_seconds)
    claimed = captured if captured is not None and is_ahead(captured, uploaded or app.now(), skew) else None
    if claimed is not None:
        captured = None
    if captured is None and stored is not None:
        captured = stored.last_modified
    captured_at = format_timestamp(captured) if captured else _event_time(frame)
    etag = stored.etag if stored else frame.etag
    version_id = (stored.version_id if stored else None) or frame.version_id
    # Another model version's item stays out of the camera index (no camera_id/captured_at).
    indexed = key_info is not None and app.result_model_version is None
    return {
        "object_id": object_id(frame.bucket, frame.key),
        "object_version": result_sort_key(object_version, app.result_model_version),
        "bucket": frame.bucket,
        "key": frame.key,
        # Absent (not empty) when the key is unexpected: the item stays out of the camera index.
        "camera_id": key_info.camera_id if key_info is not None and indexed else None,
        "captured_at": captured_at if indexed else None,
        # The key's capture time when it was not trusted (ahead of the upload by more than the skew).
        "key_captured_at": format_timestamp(claimed) if claimed is not None and indexed else None,
        "frame_version": object_version if app.result_model_version else None,
        "etag": etag,
        "version_id": version_id,
        "size": stored.content_length if stored else size,
        "sequencer": frame.sequencer,
        "event_name": frame.event_name,
        "event_time": frame.event_time,
        "model_sha256": model.sha256,
        "model_version": model.manifest.model_version,
        "processed_at": format_timestamp(app.now()),
    }


def _event_time(frame: FrameEvent) -> str | None:
    """Capture time of a frame rejected before download: S3's event time ~ LastModified."""
    moment = _event_moment(frame)
    return format_timestamp(moment) if moment else None


def _event_moment(frame: FrameEvent) -> datetime | None:
    if not frame.event_time:
        return None
    try:
        moment = datetime.fromisoformat(frame.event_time.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def region_item(
    base: dict[str, Any],
    region: Region,
    model: ModelSession,
    decision: Decision | LabelSetDecision,
    latency_ms: float | None,
) -> dict[str, Any]:
    """One region's result: the frame's fields without its index fields, the region, its model's answer."""
    item = {name: value for name, value in base.items() if name not in _INDEX_FIELDS}
    return item | {
        "object_version": region_sort_key(base["object_version"], region.name),
        "region": region.name,
        "model_name": region.model,
        "region_camera_id": base.get("camera_id"),
        "region_captured_at": base.get("captured_at"),
        "model_sha256": model.sha256,
        "model_version": model.manifest.model_version,
        "status": "ok",
        **answer_fields(decision),
        "latency_ms": latency_ms,
    }


def camera_view(region: Mapping[str, Any]) -> dict[str, Any]:
    """A region item as the per-camera side effects (review, state) read it: its camera and capture time."""
    return dict(region) | {
        "camera_id": region.get("region_camera_id"),
        "captured_at": region.get("region_captured_at"),
    }


def regions_frame_item(
    base: dict[str, Any],
    answers: Sequence[tuple[Region, Decision | LabelSetDecision]],
    latency_ms: float | None,
) -> dict[str, Any]:
    """The frame item of a camera with regions: written last, the commit point, with a summary."""
    return base | {
        "status": "ok",
        "regions": {region.name: answer_summary(decision) for region, decision in answers},
        "latency_ms": latency_ms,
    }


def answer_summary(decision: Decision | LabelSetDecision) -> str | list[str]:
    """A region's answer in the frame's summary: the label, or the label set."""
    return list(decision.labels) if isinstance(decision, LabelSetDecision) else decision.label


def regions_tags(summary: Mapping[str, str | list[str]]) -> dict[str, str]:
    """The one S3 tag of a regions frame: ``name=label`` (a set joined by ``+``) per region, in order."""
    words = [
        f"{tag_value(name)}={LABELS_TAG_SEP.join(map(tag_value, answer)) if isinstance(answer, list) else tag_value(answer)}"
        for name, answer in summary.items()
    ]
    joined = REGIONS_TAG_SEP.join(words)
    if len(joined) > MAX_TAG_VALUE:
        kept: list[str] = []
        for word in words:
            if len(REGIONS_TAG_SEP.join([*kept, word])) + len(REGIONS_TRUNCATED) > MAX_TAG_VALUE:
                break
            kept.append(word)
        joined = REGIONS_TAG_SEP.join(kept) + REGIONS_TRUNCATED
    return {REGIONS_TAG: joined}
