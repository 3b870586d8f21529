"""The figures behind docs/archive.md's "The archive at scale": `python -m infra.ops.scale` prints them.

Per-frame times come from bench/results.json (`make bench`: the handler on this project's
2-core AMD EPYC, AVX-512 VNNI, against moto over loopback, int8 model); prices are us-east-1
list prices (docs/archive.md says when they were checked). Everything else is arithmetic, stated
here once; the docs site renders its table from this module, so the page and the code agree.
"""

from __future__ import annotations

import json

from infra import PROJECT_ROOT
from infra.deploy.topology import FUNCTION_MEMORY_MB
from infra.ops.backfill_manifest import (
    LAMBDA_ARM64_GB_SECOND_USD,
    LAMBDA_PER_MILLION_REQUESTS_USD,
    estimate_cost,
)

BENCH = PROJECT_ROOT / "bench" / "results.json"
S3_PUT_PER_MILLION_USD = 5.00  # PUT, COPY, POST, LIST (PutObjectTagging is one)
S3_GET_PER_MILLION_USD = 0.40  # GET, HEAD, GetObjectTagging
SQS_PER_MILLION_USD = 0.40
DDB_WRITE_PER_MILLION_USD = 0.625  # on-demand write request units
DDB_READ_PER_MILLION_USD = 0.125  # on-demand read request units
DDB_PARTITION_WRU_PER_S = 1000
# A result item with 3 labels, measured with dynamodb_item_bytes() on an item the handler wrote
# (tests/functional/test_item_size.py keeps it under 1 KB): 1 WRU for the table, +1 for by_camera.
ITEM_BYTES = 633


def dynamodb_item_bytes(item: dict) -> int:
    """An item's size by DynamoDB's rules: attribute names + values (numbers ~1 byte per 2 digits + 1,
    maps and lists 3 bytes + 1 per element)."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value) -> int:
    from decimal import Decimal

    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int | float | Decimal):
        digits = len(str(value).replace("-", "").replace(".", "").lstrip("0")) or 1
        return 1 + (digits + 1) // 2
    if isinstance(value, dict):
        return 3 + sum(len(k.encode()) + _value_bytes(v) + 1 for k, v in value.items())
    if isinstance(value, list | tuple):
        return 3 + sum(_value_bytes(v) + 1 for v in value)
    raise TypeError(f"{type(value).__name__} is not a DynamoDB value")


def figures(
    frames_per_day: int = 1_000_000,
    cameras: int = 10_000,
    peak_factor: float = 3.0,
    memory_mb: int = FUNCTION_MEMORY_MB,
    backfill_concurrency: int = 10,
    archive_frames: int = 30_000_000,
) -> dict:
    bench = json.loads(BENCH.read_text())["paths"]["int8"]
    sqs_s = bench["warm_batch_10_per_frame"]["p50_ms"] / 1000  # one SQS batch of 10, per frame
    single_s = bench["warm_batch_1"]["p50_ms"] / 1000  # Batch Operations: one frame per invocation
    gb = memory_mb / 1024
    fps = frames_per_day / 86_400
    day = {
        "lambda_usd": frames_per_day * sqs_s * gb * LAMBDA_ARM64_GB_SECOND_USD
        + frames_per_day / 10 / 1e6 * LAMBDA_PER_MILLION_REQUESTS_USD,
        # S3's SendMessage per frame + ~1 receive and 1 delete-batch per 10 frames
        "sqs_usd": frames_per_day * 1.2 / 1e6 * SQS_PER_MILLION_USD,
        "dynamodb_usd": frames_per_day * 2 / 1e6 * DDB_WRITE_PER_MILLION_USD
        + frames_per_day / 1e6 * DDB_READ_PER_MILLION_USD,
        "s3_get_usd": frames_per_day * 2 / 1e6 * S3_GET_PER_MILLION_USD,  # GetObject + GetObjectTagging
        "s3_tagging_usd": frames_per_day / 1e6 * S3_PUT_PER_MILLION_USD,  # PutObjectTagging
    }
    backfill_fps = backfill_concurrency / single_s
    archive = estimate_cost(archive_frames, per_frame_s=single_s, memory_mb=memory_mb)
    return {
        "per_frame_ms": {"sqs_batch_of_10": sqs_s * 1000, "single_frame": single_s * 1000},
        "average_fps": fps,
        "peak_fps": fps * peak_factor,
        "lambda_concurrency": {"average": fps * sqs_s, "peak": fps * peak_factor * sqs_s},
        "per_camera_writes_per_s": frames_per_day / cameras / 86_400,
        "usd_per_day": day,
        "usd_per_month": {k: v * 30 for k, v in day.items()},
        "dynamodb_wru_per_s": {"average": 2 * fps, "peak": 2 * fps * peak_factor},
        "backfill": {
            "fps": backfill_fps,
            "hours_for_archive": archive_frames / backfill_fps / 3600,
            "batch_operations_usd": archive.batch_usd,
            "lambda_usd": archive.lambda_requests_usd + archive.lambda_compute_usd,
            "dynamodb_usd": archive_frames * 2 / 1e6 * DDB_WRITE_PER_MILLION_USD,
            "s3_usd": archive_frames * 2 / 1e6 * S3_GET_PER_MILLION_USD,  # HeadObject + GetObject
            "concurrency_where_one_camera_partition_saturates": DDB_PARTITION_WRU_PER_S * single_s,
        },
    }


if __name__ == "__main__":
    print(json.dumps(figures(), indent=2))
