"""The scheduled audit: ``functions.audit_handler.lambda_handler`` (an EventBridge schedule).

Each run reconciles the versions last modified in the recent window (``[now - window, now]``,
:mod:`functions.env` ``CAMSORT_AUDIT_WINDOW_MINUTES``) against the results table and the DLQ,
with the same implementation as ``camsort audit`` (:func:`functions.archive.audit.run_audit`), and
publishes ``Unaccounted`` (and ``Duplicated``, ``OrphanResults``, ``AuditedVersions``) as
CloudWatch EMF; an alarm fires when ``Unaccounted`` > 0. It reads only; it never redrives
(an operator runs ``camsort audit --redrive`` after looking).

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
from functions.iam import declared_permissions
from functions.observability import logger, metrics
from functions.settings import load_audit_settings
from functions.stores.results import ResultsTable
from functions.wiring import CLIENT_CONFIG

# Every AWS call the audit function makes: its role grants these and nothing else.
AUDIT_CALLS = (VersionLister, DeadLetterReader, ResultsTable.get_items, ResultsTable.iter_camera)
# Unaccounted versions named in the log per run (the metric carries the count).
_LOGGED = 50


def audit_permissions():
    return declared_permissions(*AUDIT_CALLS)


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
    summary = report.to_json()
    logger.info(
        "audit done", extra={"counts": summary["counts"], "since": report.since, "until": report.until}
    )
    return {"counts": summary["counts"], "duplicated": len(report.duplicated), "orphans": len(report.orphans),
            "clean": report.clean}  # fmt: skip
