"""The scheduled audit: ``functions.audit_handler.lambda_handler`` (an EventBridge schedule).

Each run reconciles the versions last modified in the recent window (``[now - window, now]``,
:mod:`functions.env` ``CAMSORT_AUDIT_WINDOW_MINUTES``) against the results table and the DLQ,
with the same implementation as ``camsort audit`` (:func:`functions.archive.audit.run_audit`), and
publishes ``Unaccounted`` (and ``Duplicated``, ``OrphanResults``, ``AuditedVersions``) as
CloudWatch EMF; an alarm fires when ``Unaccounted`` > 0, and another when its heartbeat
(``AuditHeartbeat``) is missing. It never redrives (an operator runs ``camsort audit --redrive``
after looking); its one write is flushing the camera outboxes of the window's cameras (every
state item of each: ``state`` and each region's ``state#<region>``), so that an event whose
writer died goes out even when its camera has gone quiet.

The window overlaps consecutive runs (window > schedule period + grace), so every version is
audited at least once after its grace period; a bounded window keeps each run's cost flat.

Its role is derived from :data:`AUDIT_CALLS`, the calls it makes (their ``@requires``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit

from functions.archive.audit import DeadLetterReader, VersionLister, run_audit
from functions.frames.regions import DEFAULT_REGION
from functions.iam import declared_permissions, requires
from functions.observability import logger, metrics
from functions.settings import AuditSettings, load_audit_settings
from functions.state.camera_state import CameraStates
from functions.state.event_bus import EventPublisher
from functions.state.smoothing import SmoothingConfig
from functions.state.state_item import PARTITION_KEY, SORT_KEY, STATE_ITEM
from functions.stores.results import ResultsTable
from functions.wiring import CLIENT_CONFIG

# Every AWS call the audit function makes: its role grants these and nothing else. The state
# table and the bus: it flushes the camera outboxes (a quiet camera's event still goes out).
AUDIT_CALLS = (
    VersionLister,
    DeadLetterReader,
    ResultsTable.get_items,
    ResultsTable.iter_camera,
    CameraStates,
    EventPublisher,
)  # and state_regions (below): a Query of the state table, which the classifier's role lacks
# Unaccounted versions named in the log per run (the metric carries the count).
_LOGGED = 50


def audit_permissions():
    return declared_permissions(*AUDIT_CALLS, state_regions)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    s3_client, dynamodb_client, sqs_client = _clients()
    return audit_once(s3_client=s3_client, dynamodb_client=dynamodb_client, sqs_client=sqs_client)


@cache
def _clients() -> tuple[Any, Any, Any]:
    """Once per container."""
    return tuple(boto3.client(service, config=CLIENT_CONFIG) for service in ("s3", "dynamodb", "sqs"))


def audit_once(
    *, s3_client: Any, dynamodb_client: Any, sqs_client: Any, now: datetime | None = None
) -> dict[str, Any]:
    """One audit of the recent window; adds the metrics; returns the report's counts."""
    settings = load_audit_settings()
    now = now or datetime.now(UTC)
    report = run_audit(
        bucket=settings.frames_bucket,
        prefix=settings.frames_prefix,
        lister=VersionLister(s3_client),
        table=ResultsTable(settings.results_table, dynamodb_client),
        dead_letters=DeadLetterReader(sqs_client, settings.dead_letter_queue_url),
        since=now - timedelta(minutes=settings.audit_window_minutes),
        until=now,
        grace=timedelta(minutes=settings.audit_grace_minutes),
        listing=settings.audit_listing,
        now=now,
    )
    counts = report.counts
    # Emitted only by a run that got this far: its absence (AuditHeartbeatAlarm, missing data
    # breaching) says the audit stopped running or keeps failing.
    metrics.add_metric(name="AuditHeartbeat", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="Unaccounted", unit=MetricUnit.Count, value=counts["unaccounted"])
    metrics.add_metric(name="Duplicated", unit=MetricUnit.Count, value=len(report.duplicated))
    metrics.add_metric(name="OrphanResults", unit=MetricUnit.Count, value=len(report.orphans))
    metrics.add_metric(name="AuditedVersions", unit=MetricUnit.Count, value=len(report.versions))
    for version in report.unaccounted[:_LOGGED]:
        logger.error(
            f"s3://{report.bucket}/{version.key} (version {version.version_id}, {version.last_modified}): "
            "no result and not in the DLQ; run `camsort audit --redrive` to send it again",
            extra={"key": version.key, "version_id": version.version_id},
        )
    if settings.state_table:
        cameras = sorted(
            {camera for v in report.versions if (camera := camera_of(v.key, settings.frames_prefix))}
        )
        flush_outboxes(_camera_states(settings, dynamodb_client), cameras, dynamodb_client)
    summary = report.to_json()
    logger.info(
        "audit done", extra={"counts": summary["counts"], "since": report.since, "until": report.until}
    )
    return {"counts": summary["counts"], "duplicated": len(report.duplicated), "orphans": len(report.orphans),
            "clean": report.clean}  # fmt: skip


def camera_of(key: str, prefix: str) -> str | None:
    """The first folder under the frames prefix (the camera, in the default layout)."""
    rest = key[len(prefix) :] if key.startswith(prefix) else ""
    return rest.split("/", 1)[0] if "/" in rest else None


def _camera_states(settings: AuditSettings, dynamodb_client: Any) -> CameraStates:
    publisher = None
    if settings.event_bus:
        publisher = EventPublisher(settings.event_bus, _events_client())
    # The smoothing rule is not used by a flush (it only writes and publishes what is queued).
    return CameraStates(settings.state_table or "", dynamodb_client, SmoothingConfig(), publisher)


@cache
def _events_client() -> Any:
    return boto3.client("events", config=CLIENT_CONFIG)


def flush_outboxes(states: CameraStates, cameras: list[str], dynamodb_client: Any) -> int:
    """Write and publish what the cameras' outboxes still hold (changes whose writer died or
    failed to publish, once stale: functions.state.outbox), every state item of each camera (a
    region's event of a camera gone quiet goes out too). Returns the events published; a camera
    that fails is logged and counted (StateFailures), the others go on."""
    published = 0
    for camera in cameras:
        try:
            for region in state_regions(dynamodb_client, states.table_name, camera):
                published += states.flush_outbox(camera, region)
        except Exception as exc:
            logger.error(f"{states.table_name}/{camera}: outbox not flushed ({exc})")
            metrics.add_metric(name="StateFailures", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="OutboxFlushed", unit=MetricUnit.Count, value=published)
    return published


@requires("dynamodb:Query", resource="state-table")
def state_regions(dynamodb_client: Any, table: str, camera_id: str) -> list[str]:
    """The regions a camera has state items for (``default`` for ``state``; ``state#<region>``):
    one Query of the partition's state keys, never its event items. Raises on failure."""
    params: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "#c = :c AND begins_with(#i, :state)",
        "ProjectionExpression": "#i",
        "ExpressionAttributeNames": {"#c": PARTITION_KEY, "#i": SORT_KEY},
        "ExpressionAttributeValues": {":c": {"S": camera_id}, ":state": {"S": STATE_ITEM}},
    }
    regions = []
    while True:
        response = dynamodb_client.query(**params)
        for item in response.get("Items", []):
            key = item[SORT_KEY]["S"]
            if key == STATE_ITEM or key.startswith(f"{STATE_ITEM}#"):
                regions.append(key.partition("#")[2] or DEFAULT_REGION)
        if not response.get("LastEvaluatedKey"):
            return regions
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
