"""Reads the three stores the account needs (S3 versions, results, DLQ) and runs it.

One adapter per resource, as elsewhere: :class:`VersionLister` (S3 ListObjectVersions),
:class:`DeadLetterReader` (SQS, read without consuming), :class:`Redriver` (SQS send) and the
results table's :meth:`functions.stores.results.ResultsTable.get_items` / ``iter_camera``.
:func:`run_audit` puts them together and calls :func:`functions.archive.accounting.reconcile`, the one
accounting implementation. Used by ``camsort audit``, the scheduled audit function
(:mod:`functions.audit_handler`), the demo and the soak.

Reading the DLQ without consuming it: SQS has no "peek". Until the queue's approximate count
is read (or a few long polls come back empty), each message is received with a
short visibility timeout (hidden, so that one pass reads each message once), and made visible
again at once with ``ChangeMessageVisibility(0)``; nothing is deleted. Receiving with
``VisibilityTimeout=0`` instead would hand the same few messages back on every call and never
page through the queue. The cost: a DLQ message is invisible to other readers for at most
``hide_s`` seconds (or until released), and its ``ApproximateReceiveCount`` grows by one per
audit (the DLQ has no redrive policy of its own, so that count triggers nothing).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus

from botocore.exceptions import BotoCoreError, ClientError

from functions.archive.accounting import AuditReport, DeadLetter, ObjectVersion, dead_letters_in, reconcile
from functions.errors import StorageError, TransientError
from functions.frames.keys import format_timestamp
from functions.iam import requires
from functions.stores.results import ResultsTable
from functions.stores.storage import is_transient

# Listing: every version under the prefix, or, when frame names are capture timestamps (the
# default layout frames/<camera>/YYYYMMDDTHHMMSSmmmZ.jpg), each camera's hours of the window.
LISTING_FULL = "full"
LISTING_TIME_NAMED = "time-named"
LISTINGS = (LISTING_FULL, LISTING_TIME_NAMED)
# Capture time in a name may precede the upload (camera buffering): list from this much earlier.
CAPTURE_LAG = timedelta(hours=1)
_SQS_BATCH = 10


def _aws_error(exc: Exception, where: str, operation: str) -> Exception:
    if is_transient(exc):
        return TransientError(f"{where}: {operation} failed transiently ({exc}); run the audit again")
    return StorageError(f"{where}: {operation} failed ({exc}); check the name and the permissions")


class VersionLister:
    """S3 ListObjectVersions, paginated (1,000 versions per request)."""

    def __init__(self, s3_client: Any):
        self._s3 = s3_client

    @requires("s3:ListBucketVersions", resource="frames-bucket")
    def versions(self, bucket: str, prefix: str) -> Iterator[ObjectVersion]:
        params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        try:
            for page in self._s3.get_paginator("list_object_versions").paginate(**params):
                for entry in page.get("Versions", []):
                    yield ObjectVersion(
                        key=entry["Key"],
                        version_id=entry.get("VersionId"),
                        etag=entry["ETag"].strip('"'),
                        size=int(entry.get("Size", 0)),
                        last_modified=entry["LastModified"].astimezone(UTC),
                        is_latest=bool(entry.get("IsLatest", True)),
                    )
        except (ClientError, BotoCoreError) as exc:
            raise _aws_error(exc, f"s3://{bucket}/{prefix}", "S3 ListObjectVersions") from exc

    @requires("s3:ListBucketVersions", resource="frames-bucket")
    def folders(self, bucket: str, prefix: str) -> list[str]:
        """The "folders" right under ``prefix`` (one per camera in the default layout)."""
        found: list[str] = []
        try:
            pages = self._s3.get_paginator("list_object_versions").paginate(
                Bucket=bucket, Prefix=prefix, Delimiter="/"
            )
            for page in pages:
                found.extend(entry["Prefix"] for entry in page.get("CommonPrefixes", []))
        except (ClientError, BotoCoreError) as exc:
            raise _aws_error(exc, f"s3://{bucket}/{prefix}", "S3 ListObjectVersions") from exc
        return found


class DeadLetterReader:
    """The DLQ's messages, read without consuming them (see the module docstring)."""

    def __init__(self, sqs_client: Any, queue_url: str):
        self._sqs = sqs_client
        self.queue_url = queue_url

    @requires(
        "sqs:GetQueueAttributes",
        "sqs:ReceiveMessage",
        "sqs:ChangeMessageVisibility",
        resource="dead-letter-queue",
    )
    def bodies(self, *, hide_s: int = 30, wait_s: int = 5, empty_polls: int = 3) -> list[str]:
        """Every message the queue holds, as far as SQS lets one see them.

        Reads until the queue's ApproximateNumberOfMessages is reached, or ``empty_polls`` long
        polls (``wait_s`` each) in a row come back empty. One empty short poll proves nothing:
        a receive samples only some of SQS's servers, so it can return nothing from a queue that
        holds messages. An empty queue costs one GetQueueAttributes and no receive.
        """
        expected = self.approximate_count()
        read: list[dict[str, Any]] = []
        empty = 0
        try:
            while len(read) < expected and empty < empty_polls:
                messages = self._sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=_SQS_BATCH,
                    VisibilityTimeout=hide_s,
                    WaitTimeSeconds=wait_s,
                ).get("Messages", [])
                empty = 0 if messages else empty + 1
                read.extend(messages)
        except (ClientError, BotoCoreError) as exc:
            raise _aws_error(exc, self.queue_url, "SQS ReceiveMessage") from exc
        finally:
            self._release(read)
        return [message["Body"] for message in read]

    def approximate_count(self) -> int:
        try:
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
        except (ClientError, BotoCoreError) as exc:
            raise _aws_error(exc, self.queue_url, "SQS GetQueueAttributes") from exc
        return int(attributes.get("ApproximateNumberOfMessages", 0))

    def _release(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), _SQS_BATCH):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(messages[start : start + _SQS_BATCH])
            ]
            # On failure they become visible again anyway when hide_s runs out.
            with contextlib.suppress(ClientError, BotoCoreError):
                self._sqs.change_message_visibility_batch(QueueUrl=self.queue_url, Entries=entries)


def notification_body(bucket: str, version: ObjectVersion, *, region: str, event_name: str) -> str:
    """A synthetic S3 ObjectCreated notification for one version, as S3 would send it."""
    s3_object: dict[str, Any] = {"key": quote_plus(version.key), "size": version.size, "eTag": version.etag}
    if version.version_id and version.version_id != "null":
        s3_object["versionId"] = version.version_id
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": region,
                    "eventTime": format_timestamp(version.last_modified),
                    "eventName": event_name,
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "configurationId": "camsort-audit-redrive",
                        "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                        "object": s3_object,
                    },
                }
            ]
        }
    )


class Redriver:
    """Sends the unaccounted back through the normal path: notifications into the queue."""

    # Not a real S3 event name, so logs tell a redrive from an upload; the function treats
    # every ObjectCreated:* alike.
    EVENT_NAME = "ObjectCreated:AuditRedrive"

    def __init__(self, sqs_client: Any, queue_url: str, region: str):
        self._sqs = sqs_client
        self.queue_url = queue_url
        self.region = region

    @requires("sqs:SendMessage", resource="frames-queue")
    def redrive(self, bucket: str, versions: list[ObjectVersion]) -> int:
        sent = 0
        for start in range(0, len(versions), _SQS_BATCH):
            chunk = versions[start : start + _SQS_BATCH]
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": notification_body(
                        bucket, v, region=self.region, event_name=self.EVENT_NAME
                    ),
                }
                for i, v in enumerate(chunk)
            ]
            try:
                response = self._sqs.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                raise _aws_error(exc, self.queue_url, "SQS SendMessageBatch") from exc
            if response.get("Failed"):
                raise TransientError(
                    f"{self.queue_url}: {len(response['Failed'])} redrive messages were refused; run again"
                )
            sent += len(chunk)
        return sent


def run_audit(
    *,
    bucket: str,
    prefix: str,
    lister: VersionLister,
    table: ResultsTable,
    dead_letters: DeadLetterReader | None,
    since: datetime,
    until: datetime,
    grace: timedelta,
    listing: str = LISTING_FULL,
    now: datetime | None = None,
) -> AuditReport:
    """The account of every version under ``prefix`` last modified in [since, until]."""
    if listing not in LISTINGS:
        raise ValueError(f"listing {listing!r}: expected one of {', '.join(LISTINGS)}")
    now = now or datetime.now(UTC)
    if listing == LISTING_TIME_NAMED:
        # One prefix per camera and hour of the window (names start YYYYMMDDTHH). A prefix,
        # not a KeyMarker: exact on S3 and on moto (whose KeyMarker must name an existing key).
        hour = (since - CAPTURE_LAG).replace(minute=0, second=0, microsecond=0)
        hours = []
        while hour <= until:
            hours.append(hour.astimezone(UTC).strftime("%Y%m%dT%H"))
            hour += timedelta(hours=1)
        versions = [
            version
            for folder in lister.folders(bucket, prefix)
            for stamp in hours
            for version in lister.versions(bucket, folder + stamp)
        ]
    else:
        versions = list(lister.versions(bucket, prefix))
    in_window = [v for v in versions if since <= v.last_modified <= until]
    keys = [key for version in in_window for key in version.result_keys(bucket)]
    results = table.get_items(keys)
    cameras = sorted(
        {v.key[len(prefix) :].split("/", 1)[0] for v in in_window if "/" in v.key[len(prefix) :]}
    )
    window_results = [item for camera in cameras for item in table.iter_camera(camera, since, until)]
    bodies = dead_letters.bodies() if dead_letters else []
    letters: list[DeadLetter] = [letter for body in bodies for letter in dead_letters_in(body)]
    return reconcile(
        bucket,
        prefix,
        versions,
        results,
        letters,
        since=since,
        until=until,
        now=now,
        grace=grace,
        window_results=window_results,
        dlq_messages=len(bodies),
    )
