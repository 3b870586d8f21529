"""The demo's honest account: every uploaded object ends with one result or one DLQ entry.

:class:`DeliveryTracker` observes the worker's deliveries; :func:`account` reads what S3, the
results table and the DLQ really hold afterwards and names every object with neither (``lost``).
"""

from __future__ import annotations

import json
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from functions.frames.events import UnsupportedEventError, notification_frames
from functions.frames.manifest import UNKNOWN_LABEL
from infra.demo.simulator import FRAME, SimulationManifest
from infra.local.stack import LocalStack


def notification_objects(body: str) -> list[tuple[str, str | None]]:
    """(key, etag) of each ObjectCreated record in an SQS message body; [] for anything else.

    Parsed by the function's own parser, so the account reads a body exactly as the handler did.
    """
    try:
        frames, _ignored = notification_frames(body)
    except (UnsupportedEventError, KeyError, TypeError, ValueError):
        return []
    return [(frame.key, frame.etag) for frame in frames]


class DeliveryTracker:
    """The worker's observer: deliveries per message, acknowledged deliveries per object."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.acknowledged: Counter[tuple[str, str | None]] = Counter()
        self.deliveries: Counter[str] = Counter()  # messageId -> times delivered

    def observe(self, records: list[dict[str, Any]], failed_ids: set[str]) -> None:
        with self._lock:
            for record in records:
                self.deliveries[record["messageId"]] += 1
                if record["messageId"] not in failed_ids:
                    self.acknowledged.update(notification_objects(record["body"]))

    def snapshot(self) -> Counter[tuple[str, str | None]]:
        with self._lock:
            return Counter(self.acknowledged)

    @property
    def redeliveries(self) -> int:
        """Deliveries of a message after its first (it failed, or its batch did)."""
        with self._lock:
            return sum(count - 1 for count in self.deliveries.values())


def emf_metric_total(log_path: Path, name: str, *, offset: int = 0) -> float:
    """Sum of metric ``name`` in the CloudWatch EMF lines of a function log, from byte ``offset``.

    The function reports its own counts (e.g. ``Duplicates``) as EMF on stdout, which the
    worker writes to the demo's function log, as Lambda hands it to CloudWatch.
    """
    total = 0.0
    with open(log_path, "rb") as handle:
        handle.seek(offset)
        for line in handle:
            if b'"_aws"' not in line:
                continue
            try:
                blob = json.loads(line)
            except json.JSONDecodeError:
                continue
            value = blob.get(name)
            if isinstance(value, list):
                total += sum(float(v) for v in value)
            elif isinstance(value, int | float):
                total += float(value)
    return total


@dataclass
class Account:
    uploaded: int = 0
    results: int = 0
    ok: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    # Keys whose result differs from what the simulator uploaded (a frame rejected, a bad file accepted...).
    unexpected: list[str] = field(default_factory=list)
    dead_lettered: list[str] = field(default_factory=list)
    dlq_messages: int = 0
    lost: list[str] = field(default_factory=list)
    extra_results: list[str] = field(default_factory=list)  # more than one result for one object
    # Objects announced by more than one acknowledged message (beyond the first).
    duplicate_notifications: int = 0
    function_latency_ms: list[float] = field(default_factory=list)
    end_to_end_ms: list[float] = field(default_factory=list)
    label_agreement: tuple[int, int] = (
        0,
        0,
    )  # (frames whose label == the rendered label, ok rendered frames)
    audit: Any = (
        None  # the audit's report (functions.archive.accounting.AuditReport) this account is based on
    )


def scan_results(stack: LocalStack) -> list[dict[str, Any]]:
    from functions.stores.results import deserialize_item

    dynamodb = stack.client("dynamodb")
    items, params = [], {"TableName": stack.names.table, "ConsistentRead": True}
    while True:
        response = dynamodb.scan(**params)
        items.extend(deserialize_item(raw) for raw in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return items
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def account(
    stack: LocalStack, manifest: SimulationManifest, acknowledged: Counter[tuple[str, str | None]]
) -> Account:
    """Every object version under the frames prefix -> its result item or its DLQ entry.

    Lost, dead-lettered and duplicated come from the audit (:func:`infra.ops.audit_report.audit_stack`,
    the one accounting implementation, grace 0); this adds the demo's own figures: labels,
    agreement with the rendered label, latencies, results that differ from what was uploaded,
    duplicate notifications (from the worker's acknowledged deliveries).
    """
    from infra.ops.audit_report import audit_stack

    audit = audit_stack(stack)
    listed = {(v.key, v.etag) for v in audit.versions}
    expected = {(obj.key, obj.etag): obj for obj in manifest.objects}
    result = Account(uploaded=len(audit.versions), dlq_messages=audit.dlq_messages, audit=audit)
    result.lost = sorted(
        [v.key for v in audit.unaccounted] + [key for key, etag in expected if (key, etag) not in listed]
    )
    result.dead_lettered = [v.key for v in audit.versions if v.category == "dead_lettered"]
    result.extra_results = [v.key for v in audit.duplicated]
    by_identity: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    prefix = f"{stack.names.bucket}/"
    for item in scan_results(stack):
        key = item["object_id"][len(prefix) :] if item["object_id"].startswith(prefix) else item["object_id"]
        # By ETag, whatever the item's version key is (versionId on AWS; moto's events carry none).
        by_identity[(key, item.get("etag") or item["object_version"])].append(item)
    agree = rendered = 0  # rendered: ok frames the simulator drew a label for (not the unfamiliar ones)
    for version in audit.versions:
        key, etag = version.key, version.etag
        found = by_identity.get((key, etag), [])
        if not found:
            continue
        item = found[0]
        result.results += 1
        simulated = expected.get((key, etag))
        if item.get("status") == "ok":
            result.ok += 1
            result.labels[item.get("label") or UNKNOWN_LABEL] += 1
            if simulated is not None and simulated.kind == FRAME:
                rendered += 1
                agree += simulated.label == item.get("label")
        else:
            result.rejected[item.get("reason") or "unknown"] += 1
        if simulated is not None:
            wanted = (
                ("ok", None) if simulated.expected_reason is None else ("rejected", simulated.expected_reason)
            )
            if (item.get("status"), item.get("reason")) != wanted:
                result.unexpected.append(f"{key}: {item.get('status')} {item.get('reason') or ''}".strip())
            processed = _parse_time(item.get("processed_at"))
            if processed is not None:
                result.end_to_end_ms.append((processed.timestamp() - simulated.uploaded_at) * 1000.0)
        if item.get("latency_ms") is not None:
            result.function_latency_ms.append(float(item["latency_ms"]))
        # Each result was written by one delivery; every other acknowledged one was a duplicate.
        deliveries = acknowledged.get((key, etag), 0)
        result.duplicate_notifications += max(0, deliveries - 1)
    result.label_agreement = (agree, rendered)
    return result


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else None
