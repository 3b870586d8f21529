"""The bench's frames on the moto stack: upload, collect S3 -> SQS notifications, shape
Lambda events, check every frame's result, clean up."""

from __future__ import annotations

from typing import Any

from bench.config import (
    BenchError,
)


def camera_for(path: str, group: str) -> str:
    return f"{path}-{group}"


def upload_group(stack, frames: list[bytes], camera: str) -> list[dict[str, Any]]:
    """Upload ``frames`` under ``<prefix><camera>/``; return moto's S3 -> SQS messages, in order."""
    s3 = stack.client("s3")
    keys = []
    for index, data in enumerate(frames):
        key = f"{stack.names.frames_prefix}{camera}/frame-{index:05d}.jpg"
        s3.put_object(Bucket=stack.names.bucket, Key=key, Body=data, ContentType="image/jpeg")
        keys.append(key)
    return collect_notifications(stack, keys)


def collect_notifications(stack, keys: list[str], attempts: int = 200) -> list[dict[str, Any]]:
    """Receive (and delete) the notification of each key; BenchError if any never arrives."""
    from functions.frames.events import notification_frames

    sqs = stack.client("sqs")
    wanted = set(keys)
    found: dict[str, dict[str, Any]] = {}
    for _ in range(attempts):
        if len(found) == len(wanted):
            break
        messages = sqs.receive_message(
            QueueUrl=stack.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        for message in messages:
            frames, _ignored = notification_frames(message["Body"])  # the s3:TestEvent has none
            for frame in frames:
                if frame.key in wanted:
                    found[frame.key] = message
        if messages:
            sqs.delete_message_batch(
                QueueUrl=stack.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
    missing = [key for key in keys if key not in found]
    if missing:
        raise BenchError(
            f"no S3 notification arrived for {len(missing)} key(s), e.g. s3://{stack.names.bucket}/{missing[0]}; "
            "check the bucket notification configuration (infra.local.stack) and the moto log in bench/work/"
        )
    return [found[key] for key in keys]


def sqs_events(stack, messages: list[dict[str, Any]], batch_size: int) -> list[dict[str, Any]]:
    """Lambda-shaped SQS events of ``batch_size`` records each (infra.local.sqs_events's record shape)."""
    from infra.local.sqs_events import sqs_record

    records = [sqs_record(m, stack.queue_arn, stack.region) for m in messages]
    return [{"Records": records[i : i + batch_size]} for i in range(0, len(records), batch_size)]


def frame_refs(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """bucket / key / etag of each frame, for the per-stage split (no handler involved)."""
    from functions.frames.events import notification_frames

    refs = []
    for message in messages:
        frame = notification_frames(message["Body"])[0][0]
        refs.append({"bucket": frame.bucket, "key": frame.key, "etag": frame.etag or ""})
    return refs


def verify_results(stack, camera: str, expected: int) -> dict[str, int]:
    """Every frame uploaded for ``camera`` must have exactly one ``ok`` item; returns label counts."""
    from functions.stores.results import ResultsTable

    table = ResultsTable(stack.names.table, stack.client("dynamodb"))
    items = table.query_camera(camera)
    statuses = [item.get("status") for item in items]
    if len(items) != expected or any(status != "ok" for status in statuses):
        raise BenchError(
            f"{stack.names.table}: camera {camera} has {len(items)} result(s) (statuses {sorted(set(map(str, statuses)))}), "
            f"expected {expected} 'ok'; see the child log in bench/work/logs/"
        )
    counts: dict[str, int] = {}
    for item in items:
        counts[item["label"]] = counts.get(item["label"], 0) + 1
    return counts


def delete_group(stack, camera: str) -> None:
    """Free moto's memory once a path is done with its frames."""
    s3 = stack.client("s3")
    prefix = f"{stack.names.frames_prefix}{camera}/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=stack.names.bucket, Prefix=prefix):
        objects = [{"Key": obj["Key"]} for obj in page.get("Contents", [])]
        if objects:
            s3.delete_objects(Bucket=stack.names.bucket, Delete={"Objects": objects, "Quiet": True})


def collect_test_event(stack) -> None:
    """Drop the s3:TestEvent S3 sends when the notification is configured."""
    sqs = stack.client("sqs")
    for message in sqs.receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    ).get("Messages", []):
        sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"])
