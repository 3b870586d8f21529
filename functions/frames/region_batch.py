"""The inference of one invocation, per model, and the commit of a frame with regions.

Every frame of the batch contributes one crop per region of its camera (a camera without
regions: the whole frame, for ``default``). :func:`infer_per_model` stacks all crops of one model,
whatever their frames, and runs that model ONCE; each crop is decided with its own model's task
and thresholds. A batch of cameras without regions is therefore exactly today's single call.

:func:`commit_regions` writes a regions frame (docs/regions.md): tags, then every region item,
then the frame item, the commit point. A region item is written on the condition ``absent, or
an older or the SAME sequencer`` (the frame item: absent or older, as every result): a delivery
that died between its region items and its frame item left the frame uncommitted, so its
redelivery is not a duplicate and must be able to complete the set, overwriting what the first
delivery wrote with the same answer for the same bytes. The side effects (state, events, review)
follow only the frame item's write, so the first delivery produced none and nothing is counted
twice; a newer event's region items are never overwritten by an older one (its sequencer is
greater). Region items of regions removed from the configuration between the two deliveries
stay behind, unreferenced: the frame item's ``regions`` lists the set that counts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from functions.frames.decision import Decision, LabelSetDecision, decide_for
from functions.frames.model import ModelSession
from functions.frames.outcome import FrameOutcome
from functions.frames.outputs import (
    camera_view,
    region_item,
    region_sort_key,
    regions_frame_item,
    regions_tags,
)
from functions.frames.regions import DEFAULT_REGION, DEFAULT_REGIONS, Region
from functions.frames.review import reason_for
from functions.frames.shadow import ShadowTarget, score_shadow
from functions.stores.results import object_id

if TYPE_CHECKING:
    from functions.wiring import App

Answer = Decision | LabelSetDecision


@dataclass(frozen=True)
class Crop:
    """One (frame, region) to answer: ``frame`` indexes the caller's frames."""

    frame: int
    region: Region
    pixels: np.ndarray


@dataclass
class Inference:
    """What :func:`infer_per_model` found: answers by (frame, region name), failures by frame."""

    answers: dict[tuple[int, str], Answer] = field(default_factory=dict)
    failures: dict[int, BaseException] = field(default_factory=dict)
    batches: dict[str, tuple[np.ndarray, list[Crop]]] = field(default_factory=dict)  # for shadow scoring


def frame_crops(
    regions: Sequence[Region], pixels: np.ndarray | None, crops: Sequence[np.ndarray] | None
) -> list[tuple[Region, np.ndarray]]:
    """A decoded frame's crops: its regions' (``load_regions``), else the whole frame for ``default``."""
    if not regions:
        assert pixels is not None, "decoded before inference"
        return [(DEFAULT_REGIONS[0], pixels)]
    assert crops is not None, "decoded before inference"
    return list(zip(regions, crops, strict=True))


def infer_per_model(models: Mapping[str, ModelSession], crops: Sequence[Crop]) -> Inference:
    """One ONNX call per model for all its crops; a model that fails fails each frame it had a crop of.

    MemoryError is not caught: the container is out of memory, the invocation dies (as on Lambda).
    """
    found = Inference()
    by_model: dict[str, list[Crop]] = {}
    for crop in crops:
        by_model.setdefault(crop.region.model, []).append(crop)
    for name, group in by_model.items():
        try:
            model = models[name]  # a configuration is validated against these names when read
            batch = np.stack([crop.pixels for crop in group])
            probabilities, _features = model.predict(batch)
            manifest = model.manifest
            decisions = decide_for(manifest.task, probabilities, model.labels, manifest.thresholds)
        except MemoryError:
            raise
        except Exception as exc:  # a model failure fails every frame it had a crop of, loudly
            for crop in group:
                found.failures.setdefault(crop.frame, exc)
            continue
        found.batches[name] = (batch, group)
        for crop, decision in zip(group, decisions, strict=True):
            found.answers[(crop.frame, crop.region.name)] = decision
    return found


def commit_regions(
    app: App,
    frame_base: dict[str, Any],
    answers: Sequence[tuple[Region, Answer]],
    outcome: FrameOutcome,
    *,
    tag_count: int | None,
    health: dict[str, Any] | None = None,
) -> tuple[FrameOutcome, list[dict[str, Any]]]:
    """Tags, the region items, then the frame item. ``outcome`` carries the frame and latency; the
    returned one says ok or duplicate, with the committed region items (as ``camera_view``s) whose
    side effects the caller runs with the batch's (none when the frame was not committed).

    ``health``: the whole frame's measures (camera health on). They go where the camera's ``state``
    reads them: on the item of a region named ``default`` (whose state is ``state``), else on the
    frame item, which is then among the returned items (its health alone is counted)."""
    frame = outcome.frame
    frame_item = regions_frame_item(frame_base, answers, outcome.latency_ms)
    on_region = any(region.name == DEFAULT_REGION for region, _answer in answers)
    if health is not None and not on_region:
        frame_item["health"] = health
    tagged = False
    if app.settings.write_tags:
        tagged = app.store.tag_frame(
            frame.bucket,
            frame.key,
            regions_tags(frame_item["regions"]),
            version_id=frame.version_id,
            tag_count=tag_count,
        )
    regions = []
    for region, decision in answers:
        model = app.models[region.model]
        item = region_item(frame_base, region, model, decision, outcome.latency_ms)
        item["review_reason"] = reason_for(app, decision, frame_base.get("camera_id"), model)
        if health is not None and region.name == DEFAULT_REGION:
            item["health"] = health
        if not app.table.put_result(item, same_event_overwrites=True):
            return _duplicate(outcome, tagged, "a newer event's region results exist"), []
        regions.append(camera_view(item))
    if not app.table.put_result(frame_item):
        return _duplicate(outcome, tagged, "a result for an equal or newer event exists"), []
    committed = FrameOutcome(
        frame,
        "ok",
        answer={"regions": frame_item["regions"]},
        latency_ms=outcome.latency_ms,
        written=True,
        tagged=tagged,
        detail="regions: " + regions_tags(frame_item["regions"]).popitem()[1],
    )
    return committed, regions + ([frame_item] if "health" in frame_item else [])


def committed_regions(app: App, frame_items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The region items (as ``camera_view``s) of committed regions frames, of their own event: what a
    redelivery that found the frames written completes the side effects of. One BatchGetItem."""
    keys = {
        (frame["object_id"], region_sort_key(frame["object_version"], name)): frame.get("sequencer", "")
        for frame in frame_items
        for name in frame.get("regions") or {}
    }
    if not keys:
        return []
    found = app.table.existing_results(keys)
    return [
        camera_view(found[key])
        for key, sequencer in keys.items()
        if key in found and found[key].get("sequencer", "") == sequencer
    ]


def shadow_per_model(
    app: App, inference: Inference, outcomes: Mapping[int, FrameOutcome], with_regions: set[int]
) -> int:
    """Each model's shadow candidate (if it has one, on a sampled invocation) on that model's very batch,
    after the live writes: its answers go beside the live answers of the frames (whole frames) and
    regions this invocation wrote. Per model one call, like the live inference. Returns items recorded."""
    recorded = 0
    for name, (batch, group) in inference.batches.items():
        shadow = app.shadow_of(name)
        if shadow is None:
            continue
        rows, targets = [], []
        for row, crop in enumerate(group):
            outcome = outcomes.get(crop.frame)
            if outcome is None or outcome.status != "ok" or not outcome.written:
                continue
            frame = outcome.frame
            version = frame.version_id or frame.etag or ""
            key = region_sort_key(version, crop.region.name) if crop.frame in with_regions else version
            rows.append(row)
            targets.append(ShadowTarget(object_id(frame.bucket, frame.key), key, frame.sequencer))
        recorded += score_shadow(app, shadow, batch, rows, targets)
    return recorded


def _duplicate(outcome: FrameOutcome, tagged: bool, detail: str) -> FrameOutcome:
    return FrameOutcome(
        outcome.frame, "duplicate", latency_ms=outcome.latency_ms, written=False, tagged=tagged, detail=detail
    )
