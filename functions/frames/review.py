"""Which frames a person should look at, and marking them (docs/design.md, "Review").

A frame goes to review when the live model left it ``unknown`` or decided it within
``margin`` of its label's threshold: those are the frames whose labels teach the next model
the most. Marking is rate-limited per camera and clock hour (the queue adapter's conditional
counter), so one camera pointed at a wall cannot fill the queue.

:func:`review_reason` and :func:`quota_window` are pure. The reason is recorded in the result
item itself (``review_reason``, :func:`reason_for`), so that the mark follows from the
committed result: :func:`mark_for_review` runs after the write, and again when a redelivery
finds the result already written (functions/frames/effects.py). It never fails the frame: the
result is already committed, and a missed review mark only costs one example for the next
training set (counted as ``ReviewFailures``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from functions.frames.decision import Decision, LabelSetDecision
from functions.frames.manifest import UNKNOWN_LABEL
from functions.observability import logger, metrics
from functions.stores.storage import TAG_PREFIX

if TYPE_CHECKING:
    from functions.frames.model import ModelSession
    from functions.stores.review_queue import ReviewQueue
    from functions.wiring import App

REVIEW_TAG = f"{TAG_PREFIX}review"
UNKNOWN_REASON = "unknown"
NEAR_THRESHOLD_REASON = "near_threshold"
# Quota items expire a day after their hour (DynamoDB TTL); only the current hour is read.
QUOTA_TTL = timedelta(days=1)


def review_reason(
    decision: Decision | LabelSetDecision, thresholds: dict[str, float], margin: float
) -> str | None:
    """``unknown`` | ``near_threshold`` | None (confident: no review).

    Multi-label: no ``unknown`` (the empty set is an answer); ``near_threshold`` when any
    label's probability lies within ``margin`` of that label's threshold.
    """
    if isinstance(decision, LabelSetDecision):
        near = any(abs(p - thresholds[label]) <= margin for label, p in decision.probabilities.items())
        return NEAR_THRESHOLD_REASON if near else None
    if decision.label == UNKNOWN_LABEL:
        return UNKNOWN_REASON
    threshold = thresholds[decision.top_label]
    if abs(decision.confidence - threshold) <= margin:
        return NEAR_THRESHOLD_REASON
    return None


def quota_window(moment: datetime) -> str:
    """The rate limit's window: the UTC clock hour, e.g. ``2026-11-22T07``."""
    return moment.strftime("%Y-%m-%dT%H")


def reason_for(
    app: App, decision: Decision | LabelSetDecision, camera_id: str | None, model: ModelSession | None = None
) -> str | None:
    """The review reason a live result records (``review_reason``), or None: review disabled,
    no camera to rate-limit on (an unexpected key), or a confident answer. ``model``: the one
    that decided (a region's named model); default: the live model."""
    if app.review is None or not camera_id or app.result_model_version:
        return None
    thresholds = (model or app.model).manifest.thresholds
    return review_reason(decision, thresholds, app.settings.review_margin)


def mark_for_review(app: App, result: dict[str, Any]) -> str | None:
    """Queue one committed ``ok`` result that records a ``review_reason``; returns the reason or None.

    Order: quota (conditional counter) -> index entry (conditional: a redelivery that finds
    the entry queued adds nothing) -> tag. The entry is the record a reviewer works from; the
    tag (``camsort-review=1``, merged with the live tags) lets S3 lifecycle rules and
    replication keep such frames. A slot whose entry was not added (already queued, or the
    write failed) is given back, so neither a redelivery nor a failure spends the quota.
    Never raises: a failure is logged and counted (``ReviewFailures``).
    """
    queue, reason = app.review, result.get("review_reason")
    if queue is None or not reason or not result.get("camera_id"):
        return None
    uri = f"s3://{result['bucket']}/{result['key']}"
    camera_id, now = result["camera_id"], app.now()
    window, taken, added = quota_window(now), False, False
    try:
        taken = queue.take_quota(camera_id, window, app.settings.review_per_hour, now + QUOTA_TTL)
        if not taken:
            metrics.add_metric(name="ReviewRateLimited", unit=MetricUnit.Count, value=1)
            return None
        added = queue.add_entry(result | {"marked_at": result.get("processed_at")})
        if not added:
            _give_back(queue, camera_id, window, uri)
            taken = False
        if app.settings.write_tags:  # again on a redelivery: the merge is idempotent
            app.store.tag_frame(
                result["bucket"],
                result["key"],
                {REVIEW_TAG: "1"},
                version_id=result.get("version_id"),
                keep_ours=True,
            )
    except Exception as exc:  # the live result is committed: log, count, go on
        logger.warning(
            f"{uri}: review marking failed ({exc}); the result stands", extra={"key": result["key"]}
        )
        metrics.add_metric(name="ReviewFailures", unit=MetricUnit.Count, value=1)
        if taken and not added:
            _give_back(queue, camera_id, window, uri)
        return None
    if added:
        metrics.add_metric(name="ReviewMarked", unit=MetricUnit.Count, value=1)
    return reason


def _give_back(queue: ReviewQueue, camera_id: str, window: str, uri: str) -> None:
    """Return a quota slot; a failure to do so is counted, never raised."""
    try:
        queue.release_quota(camera_id, window)
    except Exception as exc:
        logger.warning(f"{uri}: review quota slot of {camera_id} ({window}) not returned ({exc})")
        metrics.add_metric(name="ReviewFailures", unit=MetricUnit.Count, value=1)
