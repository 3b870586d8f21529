"""Which frames a person should look at, and marking them (docs/design.md, "Review").

A frame goes to review when the live model left it ``unknown`` or decided it within
``margin`` of its label's threshold: those are the frames whose labels teach the next model
the most. Marking is rate-limited per camera and clock hour (the queue adapter's conditional
counter), so one camera pointed at a wall cannot fill the queue.

:func:`review_reason` and :func:`quota_window` are pure; :func:`mark_for_review` runs after
the live result is written and never fails the frame: the result is already committed, and a
missed review mark only costs one example for the next training set.
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


def mark_for_review(app: App, result: dict[str, Any], decision: Decision | LabelSetDecision) -> str | None:
    """Mark one written ``ok`` result for review when it qualifies; returns the reason or None.

    Order: quota (conditional counter) -> index entry -> tag. The index entry is the record
    a reviewer works from; the tag (``camsort-review=1``, merged with the live tags) lets S3
    lifecycle rules and replication keep such frames. Never raises.
    """
    queue = app.review
    if queue is None or not result.get("camera_id"):
        return None  # review disabled, or an unexpected key (no camera to rate-limit on)
    reason = review_reason(decision, app.model.manifest.thresholds, app.settings.review_margin)
    if reason is None:
        return None
    uri = f"s3://{result['bucket']}/{result['key']}"
    try:
        now = app.now()
        if not queue.take_quota(
            result["camera_id"], quota_window(now), app.settings.review_per_hour, now + QUOTA_TTL
        ):
            metrics.add_metric(name="ReviewRateLimited", unit=MetricUnit.Count, value=1)
            return None
        queue.add_entry(result | {"review_reason": reason, "marked_at": result.get("processed_at")})
        if app.settings.write_tags:
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
        metrics.add_metric(name="ReviewMarkFailures", unit=MetricUnit.Count, value=1)
        return None
    metrics.add_metric(name="ReviewMarked", unit=MetricUnit.Count, value=1)
    return reason
