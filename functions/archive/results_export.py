"""Results to S3 as Parquet, partitioned by capture day: the ``exportResults`` function.

The results table's stream (NEW_IMAGE) invokes this function with batches of up to 10,000
records (a 300 s batching window: a few hundred files a day at 1 M frames a day). Each batch
becomes one Parquet file per capture day it holds:

    s3://<bucket>/archive/results/day=<YYYY-MM-DD>/<first sequence>-<last sequence>.parquet

A retried batch writes the same objects again (names from its sequence numbers): no loss, no
duplicate files. An item written twice (a newer result replacing an older one, shadow scores
added by UpdateItem) appears once per write, each row carrying its stream ``sequence``; the
queries (infra/ops/stats.py) keep each (object_id, object_version)'s latest row. Only live results
are exported (items with a camera: another model version's answers and unexpected keys are not).

Why a stream and not DynamoDB's incremental export to S3, nor Firehose (docs/archive-data.md
has the figures): the export writes DynamoDB JSON or Ion, not Parquet, at $0.10/GB, so a
conversion job comes on top; Firehose bills every record as at least 5 KB and needs a Kinesis
data stream for the table (a fixed hourly charge). Lambda's reads of a DynamoDB stream are free.

Pure row building (:func:`result_rows`) is separate from the S3 write; locally
(infra/local/results_stream.py) the same handler is fed with the moto stream's records.
"""

from __future__ import annotations

import io
import os
from collections import defaultdict
from datetime import UTC, datetime
from functools import cache
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import BotoCoreError, ClientError

from functions import env
from functions.concurrency import CLIENT_CONFIG
from functions.errors import ConfigurationError, StorageError, TransientError
from functions.iam import requires
from functions.stores.storage import is_transient

ARCHIVE_RESULTS_PREFIX = "archive/results/"
SEQUENCE_WIDTH = 40  # DynamoDB stream sequence numbers: up to 40 digits, compared as padded text

SCHEMA = pa.schema(
    [
        ("object_id", pa.string()),
        ("object_version", pa.string()),
        ("camera_id", pa.string()),
        ("captured_at", pa.timestamp("ms")),  # UTC
        ("key", pa.string()),
        ("status", pa.string()),
        ("label", pa.string()),
        ("reason", pa.string()),
        ("confidence", pa.float64()),
        ("model_version", pa.string()),
        ("latency_ms", pa.float64()),
        ("sequence", pa.string()),
    ]
)
_DESERIALIZE = TypeDeserializer().deserialize


def result_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of a DynamoDB stream batch: live results only, one per INSERT/MODIFY."""
    rows = []
    for record in records:
        image = record.get("dynamodb", {}).get("NewImage")
        if record.get("eventName") not in ("INSERT", "MODIFY") or not image:
            continue
        item = {name: _DESERIALIZE(value) for name, value in image.items()}
        if not item.get("camera_id") or not item.get("captured_at"):
            continue
        probabilities = item.get("probabilities") or {}
        rows.append(
            {
                "object_id": item["object_id"],
                "object_version": item["object_version"],
                "camera_id": item["camera_id"],
                "captured_at": datetime.fromisoformat(item["captured_at"].replace("Z", "+00:00"))
                .astimezone(UTC)
                .replace(tzinfo=None),
                "key": item.get("key"),
                "status": item.get("status"),
                "label": item.get("label"),
                "reason": item.get("reason"),
                "confidence": float(max(probabilities.values())) if probabilities else None,
                "model_version": item.get("model_version"),
                "latency_ms": float(item["latency_ms"]) if item.get("latency_ms") is not None else None,
                "sequence": record["dynamodb"]["SequenceNumber"].zfill(SEQUENCE_WIDTH),
            }
        )
    return rows


def parquet_by_day(rows: list[dict[str, Any]]) -> dict[str, tuple[str, bytes]]:
    """day -> (file name, Parquet bytes); the name spans the day's first and last sequence."""
    by_day: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_day[row["captured_at"].strftime("%Y-%m-%d")].append(row)
    files = {}
    for day, day_rows in sorted(by_day.items()):
        day_rows.sort(key=lambda r: r["sequence"])
        name = f"{day_rows[0]['sequence'].lstrip('0')}-{day_rows[-1]['sequence'].lstrip('0')}.parquet"
        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(day_rows, schema=SCHEMA), buffer, compression="zstd")
        files[day] = (name, buffer.getvalue())
    return files


class ResultsArchive:
    """S3 adapter: puts the Parquet files under ``archive/results/``."""

    def __init__(self, s3_client: Any, bucket: str):
        self._s3, self.bucket = s3_client, bucket

    @requires("s3:PutObject", resource="archive-results")
    def put(self, key: str, body: bytes) -> None:
        try:
            self._s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/vnd.apache.parquet"
            )
        except (ClientError, BotoCoreError) as exc:
            where = f"s3://{self.bucket}/{key}"
            if is_transient(exc):
                raise TransientError(
                    f"{where}: PutObject failed transiently ({exc}); the batch is retried"
                ) from exc
            raise StorageError(f"{where}: PutObject failed ({exc}); check the exportResults role") from exc


def export_batch(archive: ResultsArchive, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Write one stream batch; returns what was written."""
    rows = result_rows(records)
    written = []
    for day, (name, body) in parquet_by_day(rows).items():
        key = f"{ARCHIVE_RESULTS_PREFIX}day={day}/{name}"
        archive.put(key, body)
        written.append(f"s3://{archive.bucket}/{key}")
    return {"records": len(records), "rows": len(rows), "files": written}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bucket = os.environ.get(env.FRAMES_BUCKET)
    if not bucket:
        raise ConfigurationError(f"{env.FRAMES_BUCKET} is not set: the bucket that holds archive/results/")
    # An error raises: Lambda retries the batch (bisecting it on failure, as configured).
    return export_batch(ResultsArchive(_s3(), bucket), event.get("Records", []))


@cache
def _s3() -> Any:
    """Once per container."""
    return boto3.client("s3", config=CLIENT_CONFIG)


# What the function's own code calls; the event source mapping's stream reads are declared on the
# local stand-in that makes them (infra/local/results_stream.py), as Batch Operations' are.
EXPORT_CALLS = (ResultsArchive,)
