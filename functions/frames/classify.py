"""One invocation's frames: checks, downloads, ONE batched inference, decisions, writes.

Per frame, in order (the cheap checks first, so bad input costs no download):

1. events that do not carry the object's ETag/version (Batch Operations) get them from a
   HeadObject, so every frame knows its result item key and size before any download;
2. redelivery check: one BatchGetItem for the whole invocation, only when some frame may be
   a redelivery (SQS ApproximateReceiveCount > 1, or a source without that count); a frame
   whose item already holds an equal or newer sequencer is a ``duplicate``: no download, no
   inference, only the side effects its result may still lack (functions/frames/effects.py).
   (The conditional PutItem is the guarantee; this look-up only saves the download and the
   inference when SQS redelivers a message, e.g. after another record of it failed. On first
   deliveries it would cost a round trip and a read per frame to find, almost always, nothing.)
3. key -> camera id (+ capture time) -> the camera's regions (cached per container:
   functions/stores/camera_configs.py), size from the event against the byte limit, size 0;
4. GetObject pinned to the event's ETag (IfMatch) / VersionId, then ONE decode under the
   container's decode budget: ``load_image`` (no regions, ``App.decode``) or ``load_regions``
   (one crop per region, ``App.decode_regions``). A redelivered frame (SQS receive count > 1) is
   decoded afterwards, alone and behind a mark, so a frame that kills the process is named
   by its mark and rejected (``decoder_crash``) instead of taking its batch down a third time
   (:func:`decoded_in_isolation`);
5. all crops of one model (a whole frame is one, for ``default``) -> ONE ``predict`` per model ->
   ``decide_for()`` with that model's task and thresholds (functions/frames/region_batch.py);
6. tags (ok frames), then the conditional result write (a camera with regions: each region's
   item, then the frame item: docs/regions.md). Tags go first because the write is
   the commit point: when tagging fails the message is retried, and the retry is not
   skipped as a duplicate. After the writes (or on finding the results already written): the
   review marks and the camera state, one write per camera for the batch
   (functions/frames/effects.py), at least once.

Steps 1, 3-4 and 6 run for all the invocation's frames at once on the container's I/O pool
(:mod:`functions.concurrency`): the round trips overlap instead of adding up. Each frame's own
steps stay in order (its tags are written before its result, in the same task), and every
frame's outcome is known before ``classify_frames`` returns.

Outcomes: ``ok`` / ``rejected`` (bad input: result written, acknowledged) / ``duplicate``
(acknowledged) / ``transient`` (retried) / ``error`` (a bug or a non-transient AWS error:
logged with the key, reported as a failure).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from functions.concurrency import map_each
from functions.errors import (
    BadInputError,
    DecoderCrashError,
    EmptyImageError,
    TooManyBytesError,
    TransientError,
)
from functions.frames.decision import Decision, LabelSetDecision
from functions.frames.effects import follow_results
from functions.frames.events import FrameEvent
from functions.frames.keys import KeyInfo, parse_key
from functions.frames.outcome import FrameOutcome, Status
from functions.frames.outputs import (
    answer_fields,
    base_item,
    frame_tags,
    health_fields,
    measures_health,
    ok_item,
)
from functions.frames.region_batch import (
    Crop,
    commit_regions,
    committed_regions,
    frame_crops,
    infer_per_model,
    shadow_per_model,
)
from functions.frames.regions import DEFAULT_REGION, WHOLE_FRAME, CameraConfig, Region
from functions.frames.review import reason_for
from functions.observability import logger
from functions.stores.results import object_id, result_sort_key
from functions.stores.storage import StoredFrame
from functions.wiring import App


@dataclass
class _Work:
    """A frame on its way through the steps."""

    index: int
    frame: FrameEvent
    object_version: str = ""
    size: int | None = None
    key_info: KeyInfo | None = None
    stored: StoredFrame | None = None
    pixels: np.ndarray | None = None  # the whole frame (a camera with regions: for its health only)
    received_at: float | None = None
    decision: Decision | LabelSetDecision | None = None
    config: CameraConfig | None = None  # the camera's regions, looked up before the download
    crops: list[np.ndarray] | None = None  # a camera with regions: one per region, in order
    # What this invocation committed: the result item (a whole frame), or each region's (as
    # functions.frames.outputs.camera_view reads them): their side effects follow per batch.
    results: list[dict[str, Any]] | None = None

    @property
    def decoded(self) -> bool:
        return self.pixels is not None or self.crops is not None

    @property
    def regions(self) -> tuple[Region, ...]:
        """The camera's configured regions; () for the whole-frame default."""
        return self.config.regions if self.config is not None else ()


def classify_frames(frames: list[FrameEvent], app: App) -> list[FrameOutcome]:
    """Outcome of every frame, in the order given. Never raises for one frame's failure.

    The network steps run for all frames at once on ``app.pool`` (see the module docstring);
    every outcome is known before this returns, so nothing is acknowledged before its write.
    """
    outcomes: dict[int, FrameOutcome] = {}
    work = [_Work(index=index, frame=frame, size=frame.size) for index, frame in enumerate(frames)]
    work = _each(work, app, _identify, outcomes)  # HeadObject, only for Batch Operations tasks
    work = _skip_duplicates(work, app, outcomes)
    downloaded = _each(work, app, _check_and_load, outcomes)  # GetObject + decode, concurrently
    downloaded = _decode_redelivered(downloaded, app, outcomes)  # one at a time, marked

    if downloaded:
        _infer_and_commit(downloaded, app, outcomes)
    return [outcomes[index] for index in range(len(frames))]


def _infer_and_commit(downloaded: list[_Work], app: App, outcomes: dict[int, FrameOutcome]) -> None:
    """One ONNX call per model over every frame's crops (region_batch.py), then each frame's writes."""
    crops = [
        Crop(item.index, region, pixels)
        for item in downloaded
        for region, pixels in frame_crops(item.regions, item.pixels, item.crops)
    ]
    inference = infer_per_model(app.models, crops)
    answered = []
    for item in downloaded:
        if item.index in inference.failures:
            outcomes[item.index] = _failure(item.frame, inference.failures[item.index], "inference failed")
            continue
        if not item.regions:
            item.decision = inference.answers[(item.index, DEFAULT_REGION)]
        answered.append(item)
    # Tags, then the conditional result write(s), per frame; all frames concurrently. Then their
    # side effects: the camera state once per camera (and region) for the whole batch.
    _each(answered, app, lambda item, app: _commit(item, app, inference.answers), outcomes)
    follow_results(app, [result for item in answered for result in item.results or ()])
    # After the live writes: each model's candidate on that model's batch (frames and regions written).
    shadow_per_model(app, inference, outcomes, {item.index for item in answered if item.regions})


def _commit(item: _Work, app: App, answers: dict[tuple[int, str], Any]) -> FrameOutcome:
    if not item.regions:
        return _commit_ok(item, app)
    pending = FrameOutcome(item.frame, "ok", latency_ms=_elapsed_ms(item, app))
    outcome, item.results = commit_regions(
        app,
        _base_item(item, app),
        [(region, answers[(item.index, region.name)]) for region in item.regions],
        pending,
        tag_count=item.stored.tag_count if item.stored else None,
        health=health_fields(app, item.pixels),
    )
    return outcome


def _each(
    work: list[_Work],
    app: App,
    step: Callable[[_Work, App], FrameOutcome | None],
    outcomes: dict[int, FrameOutcome],
) -> list[_Work]:
    """Run ``step`` on every frame concurrently; record the outcomes; return the frames still going."""
    results = map_each(app.pool, lambda item: _guard(item, app, step), work)
    remaining = []
    for item, outcome in zip(work, results, strict=True):
        if outcome is None:
            remaining.append(item)
        else:
            outcomes[item.index] = outcome
    return remaining


def _guard(item: _Work, app: App, step: Callable[[_Work, App], FrameOutcome | None]) -> FrameOutcome | None:
    """Run one step; bad input becomes a written ``rejected`` result, the rest a failure."""
    try:
        return step(item, app)
    except BadInputError as exc:
        return _reject(item, app, exc)
    except MemoryError:
        raise  # the container is out of memory, not this frame at fault: the invocation dies, as on Lambda
    except Exception as exc:
        return _failure(item.frame, exc, "processing failed")


def _identify(item: _Work, app: App) -> None:
    frame = item.frame
    if not (frame.version_id or frame.etag):
        info = app.store.head_frame(frame.bucket, frame.key, frame.version_id)
        item.frame = replace(frame, etag=info.etag, version_id=info.version_id or frame.version_id)
        item.size = info.size
    item.object_version = item.frame.version_id or item.frame.etag or ""


def _skip_duplicates(work: list[_Work], app: App, outcomes: dict[int, FrameOutcome]) -> list[_Work]:
    if not any(may_be_redelivered(item.frame) for item in work):
        return work  # first deliveries: the conditional write alone keeps duplicates out
    keys = [
        (object_id(w.frame.bucket, w.frame.key), result_sort_key(w.object_version, app.result_model_version))
        for w in work
    ]
    try:
        existing = app.table.existing_results(keys)
    except Exception as exc:  # only an optimisation: the conditional write decides
        logger.warning(f"{app.table.table_name}: duplicate look-up failed ({exc}); continuing without it")
        return work
    remaining, found = [], []
    for item, key in zip(work, keys, strict=True):
        stored = existing[key].get("sequencer", "") if key in existing else None
        if stored is not None and stored >= item.frame.sequencer:
            outcomes[item.index] = FrameOutcome(item.frame, "duplicate", detail="result already recorded")
            if stored == item.frame.sequencer:  # this very event's result, not a newer event's
                found.append(existing[key])
        else:
            remaining.append(item)
    # This event's first delivery may have died right after its write: complete what its result
    # lacks, a regions frame's regions too. (A newer event's result, or the live result a backfill
    # task meets, has its own.)
    follow_results(app, found + committed_regions(app, [result for result in found if result.get("regions")]))
    return remaining


def may_be_redelivered(frame: FrameEvent) -> bool:
    """Worth the duplicate look-up: SQS delivered the message before, or the source does not say.

    A first SQS delivery (ApproximateReceiveCount 1) is a duplicate only when S3 itself sent
    the notification twice, which is rare; redeliveries (a failed sibling record, a timeout)
    are where the look-up saves downloads and inference.
    """
    return frame.receive_count is None or frame.receive_count > 1


def _check_and_load(item: _Work, app: App) -> None:
    settings, frame = app.settings, item.frame
    item.key_info = parse_key(frame.key, prefix=settings.frames_prefix, pattern=settings.key_pattern)
    source = f"s3://{frame.bucket}/{frame.key}"
    if item.size is not None and item.size > settings.max_bytes:
        raise TooManyBytesError(
            f"{source}: {item.size} bytes (from the event) is above the limit of {settings.max_bytes}; "
            "upload smaller frames or raise the byte limit"
        )
    if item.size == 0:
        raise EmptyImageError(
            f"{source}: the object is empty (0 bytes, from the event); upload the frame again"
        )
    item.config = app.regions_for(item.key_info.camera_id)  # cached per container (camera_configs.py)
    item.stored = app.store.get_frame(
        frame.bucket, frame.key, etag=frame.etag, version_id=frame.version_id, max_bytes=settings.max_bytes
    )
    item.received_at = app.clock()
    if not decoded_in_isolation(frame):
        _decode(item, app, item.stored.data, source)


def _decode(item: _Work, app: App, data: bytes, source: str) -> None:
    """One decode: the whole frame (no regions, as ever), or each region's crop (+ the whole frame: health)."""
    if item.regions:
        whole = [WHOLE_FRAME] if measures_health(app) else []
        crops = app.decode_regions(data, source, [*whole, *(region.box for region in item.regions)])
        item.pixels, item.crops = (crops[0], crops[1:]) if whole else (None, crops)
    else:
        item.pixels = app.decode(data, source)


def decoded_in_isolation(frame: FrameEvent) -> bool:
    """An SQS redelivery without a result: its last delivery may have died while decoding it.

    A frame that kills the process (a native decoder crash, or memory) takes its whole batch
    with it, and SQS returns every message of it. Redelivered frames are therefore decoded one
    at a time, alone, each behind a mark (``ResultsTable.start_decode``) that only a finished
    decode removes: a mark left behind names the frame that died, and the next delivery rejects
    it (``decoder_crash``) instead of decoding it a third time. First deliveries cost nothing.
    """
    return frame.receive_count is not None and frame.receive_count > 1


def _decode_redelivered(work: list[_Work], app: App, outcomes: dict[int, FrameOutcome]) -> list[_Work]:
    """Decode the frames ``_check_and_load`` left undecoded, one after another, nothing else running."""
    remaining = []
    for item in work:
        outcome = _guard(item, app, _decode_marked) if not item.decoded else None
        if outcome is None:
            remaining.append(item)
        else:
            outcomes[item.index] = outcome
    return remaining


def _decode_marked(item: _Work, app: App) -> None:
    assert item.stored is not None, "downloaded before decoding"
    mark = _base_item(item, app)
    source = f"s3://{item.frame.bucket}/{item.frame.key}"
    if app.table.start_decode(mark) > 1:
        raise DecoderCrashError(
            f"{source}: an earlier delivery of this frame died while decoding it alone, after the delivery "
            "before that was lost too; it is not decoded again. Open the file with another decoder, "
            "re-save it and upload it again"
        )
    try:
        _decode(item, app, item.stored.data, source)
    except BadInputError:
        app.table.finish_decode(mark)  # refused without harm: not a crash
        raise
    app.table.finish_decode(mark)  # anything else (MemoryError) leaves the mark: the process dies


def _commit_ok(item: _Work, app: App) -> FrameOutcome:
    frame, model, decision = item.frame, app.model, item.decision
    assert decision is not None, "decided before committing"
    tagged = False
    if app.settings.write_tags:
        tags = frame_tags(decision, model)
        tag_count = item.stored.tag_count if item.stored else None
        tagged = app.store.tag_frame(
            frame.bucket, frame.key, tags, version_id=frame.version_id, tag_count=tag_count
        )
    latency_ms = _elapsed_ms(item, app)
    result = ok_item(_base_item(item, app), decision, latency_ms)
    result["review_reason"] = reason_for(app, decision, result.get("camera_id"))
    health = health_fields(app, item.pixels)
    if health is not None:
        result["health"] = health  # the camera's health reads it (effects)
    written = app.table.put_result(result)
    if written:  # committed: its side effects follow, the batch's together (classify_frames); a
        item.results = [result]  # redelivery that finds it written completes them (_skip_duplicates)
    return FrameOutcome(
        frame,
        "ok" if written else "duplicate",
        label=getattr(decision, "label", None),
        labels=getattr(decision, "labels", None),
        answer=answer_fields(decision),
        confidence=decision.confidence,
        latency_ms=latency_ms,
        written=written,
        tagged=tagged,
        detail=None if written else "a result for an equal or newer event exists",
    )


def _reject(item: _Work, app: App, error: BadInputError) -> FrameOutcome:
    """Write the ``rejected`` result (conditionally, like any result) and acknowledge."""
    frame = item.frame
    reason = error.reason
    if not item.object_version:
        # Batch Operations on an object that no longer exists: no ETag/version to key an
        # item on; the task's result code (PermanentFailure) is the record.
        return FrameOutcome(frame, "rejected", reason=reason, detail=str(error), error=error)
    latency_ms = _elapsed_ms(item, app)
    result = _base_item(item, app) | {
        "status": "rejected",
        "reason": reason,
        "detail": str(error),
        "latency_ms": latency_ms,
    }
    try:
        written = app.table.put_result(result)
    except Exception as exc:
        return _failure(frame, exc, f"writing the rejected result ({reason}) failed")
    return FrameOutcome(
        frame,
        "rejected" if written else "duplicate",
        reason=reason,
        detail=str(error),
        error=error,
        latency_ms=latency_ms,
        written=written,
    )


def _failure(frame: FrameEvent, exc: BaseException, what: str) -> FrameOutcome:
    status: Status = "transient" if isinstance(exc, TransientError) else "error"
    return FrameOutcome(frame, status, detail=f"{what}: {exc}", error=exc)


def _base_item(item: _Work, app: App) -> dict[str, Any]:
    return base_item(
        item.frame,
        app,
        object_version=item.object_version,
        key_info=item.key_info,
        stored=item.stored,
        size=item.size,
    )


def _elapsed_ms(item: _Work, app: App) -> float | None:
    """Object bytes received -> result ready to write (None when never downloaded)."""
    if item.received_at is None:
        return None
    return round((app.clock() - item.received_at) * 1000.0, 3)
