"""The scale figures assume a result item costs 1 WRU (< 1 KB) in the table and 1 in by_camera:
measure a real item the handler wrote, with production-length names."""

from __future__ import annotations

import io

from PIL import Image

from functions import wiring
from functions.handler import handle
from functions.settings import Settings
from functions.stores.results import ResultsTable
from infra.ops.scale import ITEM_BYTES, dynamodb_item_bytes
from tests.functional.test_model_versions import batch_event


def test_a_result_item_stays_under_one_write_unit(aws, tiny_model, tmp_path):
    app = wiring.build_app(
        Settings(model_uri="unused", results_table=aws.table, model_cache_dir=str(tmp_path)),
        s3_client=aws.s3,
        dynamodb_client=aws.dynamodb,
        model=tiny_model,
    )
    buffer = io.BytesIO()
    Image.new("RGB", (1280, 720), (200, 30, 30)).save(buffer, "JPEG")
    key = "frames/cam-00042/20261122T073900123Z.jpg"
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=buffer.getvalue())
    for event in batch_event(aws.bucket, [key], {}):
        handle(event, lambda: app)
    raw = aws.dynamodb.scan(TableName=aws.table)["Items"][0]
    item = ResultsTable(aws.table, aws.dynamodb).get(raw["object_id"]["S"], raw["object_version"]["S"])
    # What the deployed function writes instead of the test's names: the prod bucket, a notification's
    # sequencer and event, a trained model's version (20 + 9 characters).
    item |= {
        "bucket": "camsort-frames-prod",
        "object_id": f"camsort-frames-prod/{key}",
        "sequencer": "0" * 14 + "0062D0B6C8F4D1E2A3",
        "event_name": "ObjectCreated:Put",
        "event_time": "2026-11-22T07:39:00.123Z",
        "model_version": "20261122T073900Z-1a2b3c4d",
    }
    size = dynamodb_item_bytes(item)
    assert size < 1024
    assert abs(size - ITEM_BYTES) <= 64, (
        f"docs/archive.md/infra.ops.scale say {ITEM_BYTES} bytes, measured {size}"
    )
