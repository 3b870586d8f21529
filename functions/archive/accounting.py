"""The account: every object version under the frames prefix -> its one result or DLQ entry.

The system's promise is that every uploaded frame (every *version* of a key, on a versioned
bucket) ends with exactly one result item or one dead-letter entry. This module decides, for
each version listed from S3, which of these it is, from what the three stores hold. It is the
one accounting implementation: ``camsort audit``, the scheduled audit function, the demo and
the soak all call :func:`reconcile` (through :func:`functions.archive.audit.run_audit`).

Pure: no AWS calls (:mod:`functions.archive.audit` reads the stores).

How a version finds its result: items are keyed ``(object_id, object_version)`` where
``object_version`` is the event's ``versionId`` when it carries one (real S3 on a versioned
bucket), else the ETag (moto's events carry no ``versionId``; an unversioned bucket). So each
version is looked up under both.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import unquote_plus

from functions.frames.keys import format_timestamp
from functions.stores.results import PARTITION_KEY, SORT_KEY, object_id

Category = Literal["ok", "rejected", "superseded", "dead_lettered", "pending", "unaccounted"]
ACCOUNTED: tuple[Category, ...] = ("ok", "rejected", "superseded", "dead_lettered")
CATEGORIES: tuple[Category, ...] = (*ACCOUNTED, "pending", "unaccounted")
# The reason the function gives a version overwritten (or deleted) before it was read.
SUPERSEDED_REASON = "superseded"
# S3's version id of objects written while versioning was off.
NULL_VERSION = "null"


@dataclass(frozen=True)
class ObjectVersion:
    """One version of one key, as ListObjectVersions reports it."""

    key: str
    version_id: str | None  # None / "null" on an unversioned bucket
    etag: str  # without quotes
    size: int
    last_modified: datetime
    is_latest: bool = True

    def result_keys(self, bucket: str) -> list[tuple[str, str]]:
        """The result item keys this version may have been written under (versionId, ETag)."""
        oid = object_id(bucket, self.key)
        keys = []
        if self.version_id and self.version_id != NULL_VERSION:
            keys.append((oid, self.version_id))
        keys.append((oid, self.etag))
        return keys


@dataclass(frozen=True)
class DeadLetter:
    """One object named by a DLQ message (a message may name several)."""

    key: str
    etag: str | None
    version_id: str | None


@dataclass(frozen=True)
class VersionAccount:
    key: str
    version_id: str | None
    etag: str
    size: int
    last_modified: str
    category: Category
    status: str | None = None  # the result's status / reason, when there is one
    reason: str | None = None
    results: int = 0  # result items found for this version (more than 1 is a duplicate)
    dead_letters: int = 0


@dataclass
class AuditReport:
    bucket: str
    prefix: str
    since: str
    until: str
    grace_s: float
    generated_at: str
    versions: list[VersionAccount] = field(default_factory=list)
    # Results in the window whose object version S3 no longer holds (or never held).
    orphans: list[dict[str, Any]] = field(default_factory=list)
    dlq_messages: int = 0

    @property
    def counts(self) -> Counter[str]:
        counts: Counter[str] = Counter({category: 0 for category in CATEGORIES})
        counts.update(version.category for version in self.versions)
        return counts

    @property
    def rejected_reasons(self) -> Counter[str]:
        return Counter(v.reason or "unknown" for v in self.versions if v.category == "rejected")

    @property
    def unaccounted(self) -> list[VersionAccount]:
        return [version for version in self.versions if version.category == "unaccounted"]

    @property
    def duplicated(self) -> list[VersionAccount]:
        """Versions with more than one result, or with a result and a DLQ entry."""
        return [v for v in self.versions if v.results + min(v.dead_letters, 1) > 1]

    @property
    def clean(self) -> bool:
        """Nothing unaccounted, nothing duplicated, no result for a version S3 does not hold."""
        return not (self.unaccounted or self.duplicated or self.orphans)

    def to_json(self) -> dict[str, Any]:
        return {
            "bucket": self.bucket,
            "prefix": self.prefix,
            "since": self.since,
            "until": self.until,
            "grace_s": self.grace_s,
            "generated_at": self.generated_at,
            "counts": dict(self.counts),
            "rejected_reasons": dict(self.rejected_reasons),
            "versions": len(self.versions),
            "dlq_messages": self.dlq_messages,
            "unaccounted": [asdict(v) for v in self.unaccounted],
            "duplicated": [asdict(v) for v in self.duplicated],
            "orphans": self.orphans,
            "clean": self.clean,
        }


def dead_letters_in(body: str) -> list[DeadLetter]:
    """The objects an S3 notification body (a DLQ message) names; [] for anything else."""
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, TypeError):
        return []
    if isinstance(payload, dict) and isinstance(payload.get("Message"), str):  # SNS-wrapped
        return dead_letters_in(payload["Message"])
    records = payload.get("Records") if isinstance(payload, dict) else None
    found = []
    for record in records if isinstance(records, list) else []:
        s3_object = record.get("s3", {}).get("object") if isinstance(record, dict) else None
        if not isinstance(s3_object, dict) or "key" not in s3_object:
            continue
        etag = s3_object.get("eTag")
        found.append(
            DeadLetter(
                key=unquote_plus(str(s3_object["key"])),
                etag=str(etag).strip('"') if etag else None,
                version_id=s3_object.get("versionId"),
            )
        )
    return found


def reconcile(
    bucket: str,
    prefix: str,
    versions: list[ObjectVersion],
    results: dict[tuple[str, str], dict[str, Any]],
    dead_letters: list[DeadLetter],
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    grace: timedelta,
    window_results: list[dict[str, Any]] = (),  # type: ignore[assignment]
    dlq_messages: int = 0,
) -> AuditReport:
    """Classify every version last modified in [since, until].

    ``results``: the items found for the versions' :meth:`ObjectVersion.result_keys`.
    ``versions`` may hold versions outside the window: they are not classified, but they
    keep their results from counting as orphans. ``window_results``: results to check for
    orphans (e.g. the window's results per camera).
    """
    report = AuditReport(
        bucket=bucket,
        prefix=prefix,
        since=format_timestamp(since),
        until=format_timestamp(until),
        grace_s=grace.total_seconds(),
        generated_at=format_timestamp(now),
        dlq_messages=dlq_messages,
    )
    dead: Counter[tuple[str, str | None]] = Counter()
    for letter in dead_letters:
        dead[(letter.key, letter.version_id)] += 1
        if letter.version_id is None or letter.version_id == NULL_VERSION:
            dead[(letter.key, letter.etag)] += 1
    ids_by_key: dict[str, set[str]] = {}
    for version in versions:
        ids_by_key.setdefault(version.key, set()).add(version.version_id or NULL_VERSION)
    for version in sorted(versions, key=lambda v: (v.key, v.last_modified)):
        if not since <= version.last_modified <= until:
            continue
        found = [results[k] for k in version.result_keys(bucket) if k in results]
        letters = dead[(version.key, version.version_id)] if version.version_id else 0
        letters = letters or dead[(version.key, version.etag)]
        report.versions.append(
            _account(version, found, letters, ids_by_key[version.key], now=now, grace=grace)
        )
    known = {k for version in versions for k in version.result_keys(bucket)}
    for item in window_results:
        if (item.get(PARTITION_KEY), item.get(SORT_KEY)) not in known:
            report.orphans.append(
                {
                    "key": item.get("key"),
                    "object_version": item.get(SORT_KEY),
                    "status": item.get("status"),
                    "processed_at": item.get("processed_at"),
                }
            )
    return report


def _account(
    version: ObjectVersion,
    found: list[dict[str, Any]],
    letters: int,
    sibling_ids: set[str],
    *,
    now: datetime,
    grace: timedelta,
) -> VersionAccount:
    base: dict[str, Any] = {
        "key": version.key,
        "version_id": version.version_id,
        "etag": version.etag,
        "size": version.size,
        "last_modified": format_timestamp(version.last_modified),
        "results": len(found),
        "dead_letters": letters,
    }
    if found:
        item = found[0]
        status, reason = item.get("status"), item.get("reason")
        owner = item.get("version_id")
        if reason == SUPERSEDED_REASON or (
            # Found under the ETag only, written for another version of this key holding the
            # same bytes (an identical overwrite whose event carried no versionId).
            owner and version.version_id and owner != version.version_id and owner in sibling_ids
        ):
            category: Category = "superseded"
        else:
            category = "ok" if status == "ok" else "rejected"
        return VersionAccount(**base, category=category, status=status, reason=reason)
    if letters:
        return VersionAccount(**base, category="dead_lettered")
    if now - version.last_modified < grace:
        return VersionAccount(**base, category="pending")  # may still be on its way
    return VersionAccount(**base, category="unaccounted")
