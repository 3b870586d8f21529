"""Every event shape the function accepts, parsed into :class:`FrameEvent`s.

Supported (see ``tests/events/*.json`` for a recorded example of each):

* SQS, the deployed shape: each message body is an S3 notification (``{"Records": [...]}``,
  possibly several records) or an SNS notification wrapping one. ``source_id`` is the SQS
  ``messageId``, the unit SQS retries (``batchItemFailures``).
* a direct S3 notification (``{"Records": [{"eventSource": "aws:s3", ...}]}``).
* an EventBridge ``Object Created`` event from ``aws.s3``.
* S3 Batch Operations, invocation schema 1.0 and 2.0; ``source_id`` is the ``taskId``.
* ``s3:TestEvent`` (S3 sends one when a notification is configured), direct or inside SQS /
  SNS: acknowledged and ignored.

Keys: S3 notifications and Batch Operations URL-encode the key ("red flower.jpg" arrives as
``red+flower.jpg``, a literal ``+`` as ``%2B``), so they are decoded with ``unquote_plus``.
EventBridge's ``detail.object.key`` is used as is: AWS's EventBridge message-structure page
does not say the key is encoded (the S3 notification page says it explicitly), and field
reports show literal ``+`` and spaces arriving raw; decoding would turn a literal ``+`` into
a space. (Powertools' ``S3EventBridgeNotificationObject.key`` applies ``unquote_plus``; we
read the raw field on purpose.)

Pure: parsing only, no AWS calls.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import (
    EventBridgeEvent,
    S3BatchOperationEvent,
    S3Event,
    SQSEvent,
)

EventKind = Literal["sqs", "s3", "eventbridge", "batch"]

SEQUENCER_WIDTH = 32
_HEX = re.compile(r"^[0-9A-Fa-f]+$")
TEST_EVENT = "s3:TestEvent"


class UnsupportedEventError(ValueError):
    """The invocation payload is not an event shape this function knows."""


@dataclass(frozen=True)
class FrameEvent:
    """One object that (may have) become a frame, whatever event announced it."""

    bucket: str
    key: str  # decoded: the exact S3 key
    size: int | None  # from the event; None when the event does not say (Batch Operations)
    etag: str | None  # without quotes
    version_id: str | None
    sequencer: str  # normalised (see normalise_sequencer); "" when absent
    event_time: str | None
    event_name: str
    source_id: str | None  # SQS messageId / Batch Operations taskId / EventBridge id
    # SQS's ApproximateReceiveCount (1 = first delivery); None when the source has no such count.
    receive_count: int | None = None


@dataclass(frozen=True)
class InvalidRecord:
    """A unit of the invocation (an SQS message, a task) that could not be parsed."""

    source_id: str | None
    error: str


@dataclass(frozen=True)
class BatchInvocation:
    schema_version: str
    invocation_id: str
    task_ids: list[str]
    # Schema 2.0's ``job.userArguments`` (string -> string, as CreateJob's UserArguments);
    # {} for schema 1.0, which has none. Interpreted by functions.archive.jobs.
    user_arguments: dict[str, str] = field(default_factory=dict)


@dataclass
class ParsedEvent:
    kind: EventKind
    frames: list[FrameEvent] = field(default_factory=list)
    invalid: list[InvalidRecord] = field(default_factory=list)
    ignored: int = 0  # test events and non-ObjectCreated records, acknowledged
    # Every unit the response must account for, in event order (SQS messageIds, task ids).
    source_ids: list[str] = field(default_factory=list)
    batch: BatchInvocation | None = None
    # Things the handler logs but that do not stop a frame (e.g. an unusable sequencer).
    warnings: list[str] = field(default_factory=list)


def normalise_sequencer(sequencer: str | None) -> str:
    """S3's hex sequencer, upper-case, left-padded with zeros: string order == event order.

    S3 only promises that a greater hex value is a later event for the same key; its width
    varies, so ``"9"`` < ``"10"`` only holds after padding.
    """
    if not sequencer:
        return ""
    if not _HEX.match(sequencer) or len(sequencer) > SEQUENCER_WIDTH:
        raise ValueError(f"sequencer {sequencer!r} is not a hex string of at most {SEQUENCER_WIDTH} digits")
    return sequencer.upper().rjust(SEQUENCER_WIDTH, "0")


def sequencer_or_unordered(sequencer: str | None, where: str, warnings: list[str]) -> str:
    """The normalised sequencer, or "" (no ordering) with a warning when it is not usable hex.

    A malformed sequencer says nothing about event order, but the frame is still a frame:
    it is classified without ordering (its result is written only if none exists yet) rather
    than failing until it lands in the DLQ.
    """
    try:
        return normalise_sequencer(sequencer)
    except ValueError as exc:
        warnings.append(f"{where}: {exc}; processed without ordering")
        return ""


def strip_etag(etag: str | None) -> str | None:
    return etag.strip('"') if etag else None


def parse_event(event: Any) -> ParsedEvent:
    """Classify the payload and parse it; ``UnsupportedEventError`` when the shape is unknown."""
    if not isinstance(event, dict):
        raise UnsupportedEventError(f"event is a {type(event).__name__}, not a JSON object")
    records = event.get("Records")
    if records is not None:
        if not isinstance(records, list):
            raise UnsupportedEventError(f"'Records' is a {type(records).__name__}, not a list")
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise UnsupportedEventError(
                    f"Records[{index}] is a {type(record).__name__}, not a JSON object"
                )
    if _is_sqs(event):
        return _parse_sqs(SQSEvent(event))
    if "invocationSchemaVersion" in event:
        return _parse_batch(S3BatchOperationEvent(event))
    if event.get("source") == "aws.s3" and "detail-type" in event:
        return _parse_eventbridge(EventBridgeEvent(event))
    if event.get("Event") == TEST_EVENT:
        return ParsedEvent(kind="s3", ignored=1)
    if _is_s3_notification(event):
        parsed = ParsedEvent(kind="s3")
        parsed.frames, parsed.ignored = _s3_notification_frames(event, None, parsed.warnings)
        return parsed
    raise UnsupportedEventError(
        f"unrecognised event (top-level keys: {sorted(event)[:10]}); expected SQS, S3 notification, "
        "EventBridge 'Object Created' or S3 Batch Operations"
    )


def _is_sqs(event: dict) -> bool:
    records = event.get("Records")
    return bool(records) and isinstance(records, list) and records[0].get("eventSource") == "aws:sqs"


def _is_s3_notification(event: dict) -> bool:
    records = event.get("Records")
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:s3" for r in records)
    )


def _parse_sqs(event: SQSEvent) -> ParsedEvent:
    parsed = ParsedEvent(kind="sqs")
    for record in event.records:
        message_id = record.message_id
        parsed.source_ids.append(message_id)
        try:
            frames, ignored = notification_frames(
                record.body,
                source_id=message_id,
                warnings=parsed.warnings,
                receive_count=_receive_count(record.raw_event),
            )
        except (json.JSONDecodeError, UnsupportedEventError, KeyError, TypeError, ValueError) as exc:
            parsed.invalid.append(InvalidRecord(message_id, f"SQS message {message_id}: {exc}"))
            continue
        parsed.frames.extend(frames)
        parsed.ignored += ignored
    return parsed


def notification_frames(
    body: str | dict,
    source_id: str | None = None,
    warnings: list[str] | None = None,
    receive_count: int | None = None,
) -> tuple[list[FrameEvent], int]:
    """One SQS message body -> (its ObjectCreated frames, the records ignored).

    The body is an S3 event notification, an SNS notification wrapping one, or an
    ``s3:TestEvent`` (no frames, one ignored). Anything else raises ``UnsupportedEventError``;
    a malformed record raises ``KeyError``, ``TypeError`` or ``ValueError``. Public: the demo's
    accounting and the bench read the queue's bodies with it too. ``warnings`` collects what
    was processed in a degraded way (a sequencer that is not hex: no ordering).
    """
    if isinstance(body, str):
        body = json.loads(body)
    if isinstance(body, dict) and body.get("Type") == "Notification" and "Message" in body:
        body = json.loads(body["Message"])  # SNS-wrapped (S3 -> SNS -> SQS)
    if not isinstance(body, dict):
        raise UnsupportedEventError("body is not a JSON object")
    if body.get("Event") == TEST_EVENT:
        return [], 1
    if not _is_s3_notification(body):
        raise UnsupportedEventError("body is not an S3 event notification")
    return _s3_notification_frames(
        body, source_id, [] if warnings is None else warnings, receive_count=receive_count
    )


def _s3_notification_frames(
    body: dict, source_id: str | None, warnings: list[str], receive_count: int | None = None
) -> tuple[list[FrameEvent], int]:
    frames, ignored = [], 0
    for record in S3Event(body).records:
        if not record.event_name.startswith("ObjectCreated:"):
            ignored += 1  # deletes, restores...: nothing to classify
            continue
        s3 = record.s3
        key = unquote_plus(s3.get_object["key"])
        frames.append(
            FrameEvent(
                bucket=s3.bucket.name,
                key=key,
                size=_optional_int(s3.get_object.get("size")),
                etag=strip_etag(s3.get_object.get("eTag")),
                version_id=s3.get_object.get("versionId") or None,
                sequencer=sequencer_or_unordered(
                    s3.get_object.get("sequencer"), f"s3://{s3.bucket.name}/{key}", warnings
                ),
                event_time=record.event_time,
                event_name=record.event_name,
                source_id=source_id,
                receive_count=receive_count,
            )
        )
    return frames, ignored


def _receive_count(record: dict) -> int | None:
    """The SQS record's ApproximateReceiveCount; None when absent or not a number."""
    raw = (record.get("attributes") or {}).get("ApproximateReceiveCount")
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def _parse_eventbridge(event: EventBridgeEvent) -> ParsedEvent:
    parsed = ParsedEvent(kind="eventbridge")
    if event.detail_type != "Object Created":
        parsed.ignored = 1
        return parsed
    detail = event.detail
    obj = detail["object"]
    parsed.source_ids.append(event.get_id)
    parsed.frames.append(
        FrameEvent(
            bucket=detail["bucket"]["name"],
            key=obj["key"],  # raw on purpose, see the module docstring
            size=_optional_int(obj.get("size")),
            etag=strip_etag(obj.get("etag")),
            version_id=obj.get("version-id") or None,
            sequencer=sequencer_or_unordered(
                obj.get("sequencer"), f"s3://{detail['bucket']['name']}/{obj['key']}", parsed.warnings
            ),
            event_time=event.time,
            event_name=f"ObjectCreated:{detail.get('reason', 'Unknown')}",
            source_id=event.get_id,
        )
    )
    return parsed


def _parse_batch(event: S3BatchOperationEvent) -> ParsedEvent:
    schema = event.invocation_schema_version
    if schema not in ("1.0", "2.0"):
        raise UnsupportedEventError(
            f"S3 Batch Operations invocationSchemaVersion {schema!r} is not 1.0 or 2.0"
        )
    batch = BatchInvocation(
        schema_version=schema,
        invocation_id=event.invocation_id,
        task_ids=[],
        user_arguments=_user_arguments(event),
    )
    parsed = ParsedEvent(kind="batch", batch=batch)
    for task in event.tasks:
        task_id = task.task_id
        parsed.source_ids.append(task_id)
        batch.task_ids.append(task_id)
        try:
            bucket = task.s3_bucket  # 2.0: s3Bucket; 1.0: from s3BucketArn
            if not bucket:
                raise KeyError("s3Bucket / s3BucketArn")
            frame = FrameEvent(
                bucket=bucket,
                key=unquote_plus(task["s3Key"]),
                size=None,  # Batch Operations does not say; checked from GetObject's header
                etag=None,
                version_id=task.get("s3VersionId") or None,
                sequencer="",
                event_time=None,
                event_name="BatchOperations:Invoke",
                source_id=task_id,
            )
        except (KeyError, TypeError, ValueError) as exc:
            parsed.invalid.append(InvalidRecord(task_id, f"Batch Operations task {task_id}: missing {exc}"))
            continue
        parsed.frames.append(frame)
    return parsed


def _user_arguments(event: S3BatchOperationEvent) -> dict[str, str]:
    job = event.get("job") or {}
    arguments = job.get("userArguments") if isinstance(job, dict) else None
    if not isinstance(arguments, dict):
        return {}
    return {str(name): str(value) for name, value in arguments.items()}


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
