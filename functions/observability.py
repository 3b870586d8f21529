"""Structured logs and metrics (Powertools), shared by the handler and the classifier.

Logs are JSON lines (bucket, key, status, label, reason, latency_ms); metrics are CloudWatch
EMF written to stdout at the end of each invocation: ``Frames``, ``Rejected`` (total and per
``reason``), ``Duplicates``, ``Failures``, ``LatencyMs``, a count per label, ``Unknown`` and ``Unfamiliar``
(the frames left ``unknown`` / found unlike the training frames: the drift alarm divides the
latter by ``Classified``; counts per invocation, no camera dimension, so the metric costs the
same whatever the number of cameras) and ``InvocationErrors``.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from functions import env
from functions.familiarity import is_unfamiliar
from functions.frames.manifest import UNKNOWN_LABEL
from functions.frames.outcome import FrameOutcome

SERVICE = os.environ.get(env.POWERTOOLS_SERVICE_NAME) or "camsort"
NAMESPACE = os.environ.get(env.POWERTOOLS_METRICS_NAMESPACE) or "camsort"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


@dataclass
class LocalLambdaContext:
    """What Lambda passes as ``context``, for callers outside Lambda (the local worker, the bench,
    tests): the one stand-in, so all of them look alike to the handler and Powertools.

    Powertools' ``inject_lambda_context`` reads the name, memory, ARN and request id; the
    remaining time counts down from ``timeout_s`` like the real one. The account is moto's.
    """

    function_name: str = "camsort-classify-local"
    memory_limit_in_mb: int = 2048
    region: str = "us-east-1"
    timeout_s: float = 60.0
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    account_id: str = "123456789012"

    def __post_init__(self) -> None:
        self.invoked_function_arn = (
            f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"
        )
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/{uuid.uuid4().hex}"
        self._deadline = time.monotonic() + self.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def log_outcome(outcome: FrameOutcome) -> None:
    frame = outcome.frame
    fields = {
        "bucket": frame.bucket,
        "key": frame.key,
        "source_id": frame.source_id,
        "status": outcome.status,
        "label": outcome.label,
        "labels": outcome.labels,
        "confidence": outcome.confidence,
        "reason": outcome.reason,
        "latency_ms": outcome.latency_ms,
    }
    fields = {name: value for name, value in fields.items() if value is not None}
    if outcome.status == "error":
        logger.error(
            f"s3://{frame.bucket}/{frame.key}: {outcome.detail}", extra=fields, exc_info=outcome.error
        )
    elif outcome.status == "transient":
        logger.warning(f"s3://{frame.bucket}/{frame.key}: {outcome.detail}", extra=fields)
    elif outcome.status == "rejected":
        logger.info(f"s3://{frame.bucket}/{frame.key}: rejected ({outcome.detail})", extra=fields)
    else:
        logger.info(f"s3://{frame.bucket}/{frame.key}: {outcome.status}", extra=fields)


def record_invocation_error() -> None:
    """The whole invocation failed (unknown event shape, configuration or model problem)."""
    metrics.add_metric(name="InvocationErrors", unit=MetricUnit.Count, value=1)


def record_http_answer(status: int) -> None:
    """One Function URL request answered (2xx: classified; 4xx: bad input; 5xx: failed)."""
    metrics.add_metric(name="HttpRequests", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="HttpErrors", unit=MetricUnit.Count, value=int(status >= 400))


def record_metrics(outcomes: Iterable[FrameOutcome]) -> None:
    """Add this invocation's counts to the EMF blob flushed by ``metrics.log_metrics``."""
    outcomes = list(outcomes)
    statuses = Counter(o.status for o in outcomes)
    metrics.add_metric(name="Frames", unit=MetricUnit.Count, value=len(outcomes))
    metrics.add_metric(name="Classified", unit=MetricUnit.Count, value=statuses["ok"])
    metrics.add_metric(name="Rejected", unit=MetricUnit.Count, value=statuses["rejected"])
    metrics.add_metric(name="Duplicates", unit=MetricUnit.Count, value=statuses["duplicate"])
    metrics.add_metric(
        name="Failures", unit=MetricUnit.Count, value=statuses["transient"] + statuses["error"]
    )
    ok_answers = [o.answer for o in outcomes if o.status == "ok"]
    metrics.add_metric(
        name="Unknown",
        unit=MetricUnit.Count,
        value=sum(1 for o in outcomes if o.status == "ok" and o.label == UNKNOWN_LABEL),
    )
    metrics.add_metric(name="Unfamiliar", unit=MetricUnit.Count, value=sum(map(is_unfamiliar, ok_answers)))
    for outcome in outcomes:
        if outcome.latency_ms is not None and outcome.status in ("ok", "rejected"):
            metrics.add_metric(name="LatencyMs", unit=MetricUnit.Milliseconds, value=outcome.latency_ms)
    # Per-reason and per-label counts need their own dimension, hence single metrics.
    for reason, count in Counter(o.reason for o in outcomes if o.status == "rejected").items():
        with single_metric(
            name="RejectedByReason", unit=MetricUnit.Count, value=count, namespace=NAMESPACE
        ) as m:
            m.add_dimension(name="reason", value=str(reason))
    # a multi-label frame counts once for each label in its set (the empty set counts nowhere)
    ok = [o for o in outcomes if o.status == "ok"]
    per_label = Counter(
        label for o in ok for label in (o.labels if o.labels is not None else [o.label]) if label
    )
    for label, count in per_label.items():
        with single_metric(
            name="FramesByLabel", unit=MetricUnit.Count, value=count, namespace=NAMESPACE
        ) as m:
            m.add_dimension(name="label", value=str(label))
