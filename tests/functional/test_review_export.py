"""`camsort review export / stats` against a review table and a bucket on the moto server."""

from __future__ import annotations

import csv
import json

from click.testing import CliRunner

from camsort.cli import main
from functions.stores.review_queue import ReviewQueue
from infra.local.stack import create_review_table
from infra.ops.review import AwsTarget, ReviewQueueReader, review_export_command
from tests.fixtures.aws import unique_name
from tests.functional.test_handler import GREY, jpeg
from training.data.loading import UNLABELED_FOLDER


def queue_frames(aws, table: str) -> list[dict]:
    queue = ReviewQueue(table, aws.dynamodb)
    queued = []
    for camera, name, label, reason in [
        ("cam-01", "a.jpg", "unknown", "unknown"),
        ("cam-01", "b.jpg", "bus", "near_threshold"),
        ("cam-02", "c.jpg", "unknown", "unknown"),
        ("cam-02", "gone.jpg", "car", "near_threshold"),
    ]:
        key = f"frames/{camera}/{name}"
        etag = aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=jpeg(GREY))["ETag"].strip('"')
        item = {
            "camera_id": camera,
            "object_id": f"{aws.bucket}/{key}",
            "object_version": etag,
            "bucket": aws.bucket,
            "key": key,
            "captured_at": "2026-11-22T07:39:00.123Z",
            "label": label,
            "top_label": "bus",
            "confidence": 0.52,
            "probabilities": {"bus": 0.52, "car": 0.3, "empty": 0.18},
            "review_reason": reason,
            "model_version": "tiny-1",
        }
        assert queue.add_entry(item)
        queued.append(item)
    aws.s3.delete_object(Bucket=aws.bucket, Key="frames/cam-02/gone.jpg")
    return queued


def test_export_writes_unlabeled_frames_and_guesses_then_dequeues(aws, tmp_path):
    table = unique_name("camsort-review-test")
    create_review_table(aws.dynamodb, table)
    queue_frames(aws, table)
    target = AwsTarget(aws.endpoint_url, "unused", table)

    result = review_export_command(tmp_path / "review", target, camera=None, dequeue=True)

    root = tmp_path / "review" / UNLABELED_FOLDER
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*.jpg"))
    assert files == [
        "cam-01/20261122T073900123Z_a.jpg",
        "cam-01/20261122T073900123Z_b.jpg",
        "cam-02/20261122T073900123Z_c.jpg",
    ]
    assert (root / files[0]).read_bytes() == jpeg(GREY)
    assert result.missing == [f"s3://{aws.bucket}/frames/cam-02/gone.jpg"]
    with (root / "guesses.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["file"], r["label"], r["review_reason"]) for r in rows] == [
        (f"{UNLABELED_FOLDER}/cam-01/20261122T073900123Z_a.jpg", "unknown", "unknown"),
        (f"{UNLABELED_FOLDER}/cam-01/20261122T073900123Z_b.jpg", "bus", "near_threshold"),
        (f"{UNLABELED_FOLDER}/cam-02/20261122T073900123Z_c.jpg", "unknown", "unknown"),
    ]
    assert json.loads(rows[1]["probabilities"]) == {"bus": 0.52, "car": 0.3, "empty": 0.18}
    # Exported frames left the queue; the one whose object is gone stays to be looked at.
    left = list(ReviewQueueReader(table, aws.dynamodb).iter_entries())
    assert [e["key"] for e in left] == ["frames/cam-02/gone.jpg"]


def test_stats_counts_per_camera_label_and_reason(aws):
    table = unique_name("camsort-review-test")
    create_review_table(aws.dynamodb, table)
    queue_frames(aws, table)

    result = CliRunner().invoke(
        main,
        ["review", "stats", "--endpoint-url", aws.endpoint_url, "--review-table", table, "--json"],
    )

    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [
        {"camera_id": "cam-01", "label": "bus", "review_reason": "near_threshold", "frames": 1},
        {"camera_id": "cam-01", "label": "unknown", "review_reason": "unknown", "frames": 1},
        {"camera_id": "cam-02", "label": "car", "review_reason": "near_threshold", "frames": 1},
        {"camera_id": "cam-02", "label": "unknown", "review_reason": "unknown", "frames": 1},
    ]
    one = CliRunner().invoke(
        main,
        [
            "review",
            "stats",
            "--endpoint-url",
            aws.endpoint_url,
            "--review-table",
            table,
            "--camera",
            "cam-02",
        ],
    )
    assert one.exit_code == 0, one.output
    assert "cam-02" in one.output and "cam-01" not in one.output
