"""Feature shards -> Parquet, partitioned by camera and capture day (the archive as data).

A featurize job writes one ``.npy`` shard and one key pointer per frame (functions/shards.py):
two PUTs per frame to write, a million GETs to read back. Compaction packs them into

    s3://<bucket>/archive/features/<backbone_sha256>/camera=<camera>/day=<YYYY-MM-DD>/part-<token>.parquet

one row per (key, version) pointer: ``bucket``, ``key``, ``version`` (the version id, else the
ETag), ``etag``, ``captured_at`` (timestamp, UTC), ``dhash`` (hex), ``sha256`` (the content's),
``backbone_sha256``, ``model_version``, ``featurized_at`` (the pointer's LastModified: which row
is a key's current one) and ``features`` (float16, a fixed-size list of the backbone's width).
``camera`` and ``day`` are the Hive partition columns (a key outside the frames prefix, e.g. a
training set laid out by label, has camera ``_none``).

Incremental and idempotent: each partition keeps ``_manifest.json`` (files starting with ``_``
are skipped by pyarrow, DuckDB and Athena), which records every pointer packed into it with the
pointer's ETag and the part holding it. A run lists the pointers modified since the last run's
watermark (``_state.json``, minus an overlap for uploads in flight while it listed), skips those
already packed, and writes one new part per partition it touches, then that partition's
manifest (the commit point), then the watermark. A part's name is a digest of its rows, so a
run that stopped between the part and the manifest writes the very same object again. A key
whose content was featurized again gets a new row (the archive keeps its history); readers take
each key's row with the latest ``featurized_at`` (training/features/parquet_features.py).

The same code runs in the ``compact`` Lambda function (its own artifact: pyarrow is ~100 MB,
kept out of the classify package) and locally (``camsort compact``). Its role is derived from
:data:`COMPACTION_CALLS`.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import BotoCoreError, ClientError

from functions.archive.shard_layout import KEYS_FOLDER, decode_features
from functions.concurrency import IO_WORKERS
from functions.errors import CamsortError, StorageError, TransientError
from functions.frames.keys import format_timestamp
from functions.iam import requires
from functions.stores.storage import error_code, is_transient

ARCHIVE_FEATURES_PREFIX = "archive/features/"
NO_CAMERA = "_none"
MANIFEST = "_manifest.json"
STATE = "_state.json"
# Pointers written while a run lists may carry a LastModified just before its watermark.
OVERLAP = timedelta(minutes=15)
# Pointers one run packs at most (a Lambda run: minutes, ~100 MB of pointers); the next run resumes
# exactly after the last one packed, so a first run over a large archive takes several runs.
MAX_POINTERS = 100_000


def row_schema(width: int) -> pa.Schema:
    """The columns of a part file (``camera`` and ``day`` come from the path)."""
    return pa.schema(
        [
            ("bucket", pa.string()),
            ("key", pa.string()),
            ("version", pa.string()),
            ("etag", pa.string()),
            ("captured_at", pa.timestamp("ms", tz="UTC")),
            ("dhash", pa.string()),
            ("sha256", pa.string()),
            ("backbone_sha256", pa.string()),
            ("model_version", pa.string()),
            ("featurized_at", pa.timestamp("ms", tz="UTC")),
            ("features", pa.list_(pa.float16(), width)),
        ]
    )


class FeatureArchive:
    """S3 adapter: reads shards and pointers, writes parts, manifests and the watermark."""

    def __init__(self, s3_client: Any):
        self._s3 = s3_client

    @requires("s3:ListBucket", resource="frames-bucket")
    def list_pointers(self, bucket: str, prefix: str, since: datetime | None) -> list[dict[str, Any]]:
        """The pointer objects under ``prefix`` last modified at or after ``since``."""
        found = []
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for entry in page.get("Contents", []):
                    if since is None or entry["LastModified"] >= since:
                        found.append(entry)
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, bucket, prefix, "ListObjectsV2") from exc
        return found

    @requires("s3:ListBucket", resource="frames-bucket")
    def list_backbones(self, bucket: str, prefix: str) -> list[str]:
        """The backbone folders (64 hex digits) directly under ``prefix``."""
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix, Delimiter="/"
            )
            folders = [p["Prefix"] for page in pages for p in page.get("CommonPrefixes", [])]
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, bucket, prefix, "ListObjectsV2") from exc
        names = [folder[len(prefix) :].rstrip("/") for folder in folders]
        return sorted(n for n in names if len(n) == 64 and all(c in "0123456789abcdef" for c in n))

    @requires("s3:GetObject", resource="features")
    def read_features_object(self, bucket: str, key: str) -> bytes:
        """A key pointer or a ``.npy`` shard (both under ``features/``)."""
        data = self._get(bucket, key)
        if data is None:
            raise StorageError(f"s3://{bucket}/{key}: not found; featurize the frame again")
        return data

    @requires("s3:GetObject", resource="archive-features")
    def read_archive_json(self, bucket: str, key: str) -> dict[str, Any] | None:
        data = self._get(bucket, key)
        return None if data is None else json.loads(data)

    @requires("s3:PutObject", resource="archive-features")
    def put_archive(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        try:
            self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, bucket, key, "PutObject") from exc

    def _get(self, bucket: str, key: str) -> bytes | None:
        """The object's bytes; None when it does not exist."""
        try:
            return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise _error(exc, bucket, key, "GetObject") from exc
        except BotoCoreError as exc:
            raise _error(exc, bucket, key, "GetObject") from exc


@dataclass
class CompactionReport:
    backbone_sha256: str
    listed: int = 0  # pointers modified since the watermark (with the overlap)
    packed: int = 0  # rows written this run
    already_packed: int = 0
    skipped: list[str] = field(default_factory=list)  # pointers that could not be packed, with why
    parts: list[str] = field(default_factory=list)  # s3:// URIs written
    partitions: int = 0
    remaining: int = 0  # listed but left for the next run (MAX_POINTERS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "backbone_sha256": self.backbone_sha256,
            "listed": self.listed,
            "packed": self.packed,
            "already_packed": self.already_packed,
            "skipped": self.skipped,
            "parts": self.parts,
            "partitions": self.partitions,
            "remaining": self.remaining,
        }


def compact_features(
    archive: FeatureArchive,
    bucket: str,
    backbone_sha256: str,
    *,
    features_prefix: str = "features/",
    archive_prefix: str = ARCHIVE_FEATURES_PREFIX,
    now: datetime | None = None,
    max_pointers: int = MAX_POINTERS,
) -> CompactionReport:
    """Pack the pointers of one backbone written since the last run; see the module docstring."""
    now = now or datetime.now(UTC)
    report = CompactionReport(backbone_sha256)
    root = f"{archive_prefix}{backbone_sha256}/"
    state = archive.read_archive_json(bucket, root + STATE) or {}
    shard_root = f"{features_prefix}{backbone_sha256}/"
    listed = _to_pack(archive.list_pointers(bucket, f"{shard_root}{KEYS_FOLDER}/", _since(state)), state)
    report.listed = len(listed)
    report.remaining = max(0, len(listed) - max_pointers)
    listed = listed[:max_pointers]
    with ThreadPoolExecutor(max_workers=IO_WORKERS) as pool:
        pointers = list(pool.map(lambda entry: _read_pointer(archive, bucket, entry), listed))
    by_partition: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for entry, pointer in zip(listed, pointers, strict=True):
        if isinstance(pointer, str):
            report.skipped.append(pointer)
            continue
        row = {**pointer, "_etag": entry["ETag"].strip('"'), "_at": entry["LastModified"]}
        by_partition[partition_of(row)].append(row)
    for (camera, day), rows in sorted(by_partition.items()):
        folder = f"{root}camera={quote(camera, safe='')}/day={day}/"
        manifest = archive.read_archive_json(bucket, folder + MANIFEST) or {"parts": [], "packed": {}}
        new = [r for r in rows if manifest["packed"].get(_uri(r), [None])[0] != r["_etag"]]
        report.already_packed += len(rows) - len(new)
        if not new:
            continue
        new.sort(key=_uri)
        with ThreadPoolExecutor(max_workers=IO_WORKERS) as pool:
            vectors = list(pool.map(lambda r: _read_vector(archive, bucket, shard_root, r), new))
        kept = [(r, v) for r, v in zip(new, vectors, strict=True) if not isinstance(v, str)]
        report.skipped += [v for v in vectors if isinstance(v, str)]
        if not kept:
            continue
        token = hashlib.sha256("\n".join(f"{_uri(r)} {r['_etag']}" for r, _ in kept).encode()).hexdigest()[
            :20
        ]
        part = f"part-{token}.parquet"
        archive.put_archive(
            bucket,
            folder + part,
            _parquet([r for r, _ in kept], [v for _, v in kept]),
            "application/vnd.apache.parquet",
        )
        manifest["parts"] = sorted({*manifest["parts"], part})
        manifest["packed"].update({_uri(r): [r["_etag"], part] for r, _ in kept})
        manifest["updated_at"] = format_timestamp(now)
        archive.put_archive(
            bucket, folder + MANIFEST, json.dumps(manifest, sort_keys=True).encode(), "application/json"
        )
        report.packed += len(kept)
        report.partitions += 1
        report.parts.append(f"s3://{bucket}/{folder}{part}")
    if listed:
        last = listed[-1]
        body = {
            "watermark": last["LastModified"].isoformat(),
            # A run cut short resumes strictly after its last pointer; a complete one re-lists the overlap.
            "after_key": last["Key"] if report.remaining else None,
            "last_run": format_timestamp(now),
        }
        archive.put_archive(
            bucket, root + STATE, json.dumps(body, sort_keys=True).encode(), "application/json"
        )
    return report


def _since(state: dict[str, Any]) -> datetime | None:
    if not state:
        return None
    watermark = datetime.fromisoformat(state["watermark"].replace("Z", "+00:00"))
    return watermark if state.get("after_key") else watermark - OVERLAP


def _to_pack(entries: list[dict[str, Any]], state: dict[str, Any]) -> list[dict[str, Any]]:
    """The listed pointers in (LastModified, key) order, after a cut-short run's last one."""
    entries = sorted(entries, key=lambda e: (e["LastModified"], e["Key"]))
    if state.get("after_key"):
        mark = (_since(state), state["after_key"])
        entries = [e for e in entries if (e["LastModified"], e["Key"]) > mark]
    return entries


def _read_pointer(archive: FeatureArchive, bucket: str, entry: dict[str, Any]) -> dict[str, Any] | str:
    key = entry["Key"]
    try:
        pointer = json.loads(archive.read_features_object(bucket, key))
        for name in ("bucket", "key", "sha256", "dhash", "backbone_sha256"):
            if not pointer.get(name):
                return f"s3://{bucket}/{key}: pointer without {name!r}; featurize the frame again"
    except (StorageError, ValueError) as exc:
        if isinstance(exc, TransientError):
            raise
        return f"s3://{bucket}/{key}: {exc}"
    return pointer


def _read_vector(
    archive: FeatureArchive, bucket: str, shard_root: str, row: dict[str, Any]
) -> np.ndarray | str:
    sha = row["sha256"]
    key = f"{shard_root}{sha[:2]}/{sha}.npy"
    try:
        return decode_features(archive.read_features_object(bucket, key), f"s3://{bucket}/{key}")
    except (StorageError, ValueError) as exc:
        if isinstance(exc, TransientError):
            raise
        return f"s3://{bucket}/{key} (features of {_uri(row)}): {exc}"


def partition_of(row: dict[str, Any]) -> tuple[str, str]:
    """(camera, day) of a pointer row: its camera (``_none`` outside the frames prefix) and capture
    day; a pointer written before pointers recorded the capture time falls on its own day."""
    captured = _time(row.get("captured_at"), row["_at"]).astimezone(UTC)
    return row.get("camera_id") or NO_CAMERA, captured.strftime("%Y-%m-%d")


def _uri(row: dict[str, Any]) -> str:
    return f"s3://{row['bucket']}/{row['key']}"


def _time(text: str | None, fallback: datetime) -> datetime:
    if not text:
        return fallback
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _parquet(rows: list[dict[str, Any]], vectors: list[np.ndarray]) -> bytes:
    matrix = np.stack(vectors)
    width = matrix.shape[1]
    features = pa.FixedSizeListArray.from_arrays(pa.array(matrix.reshape(-1), type=pa.float16()), width)
    table = pa.Table.from_arrays(
        [
            pa.array([r["bucket"] for r in rows]),
            pa.array([r["key"] for r in rows]),
            pa.array([r.get("version_id") or r.get("etag") or "" for r in rows]),
            pa.array([r.get("etag") or "" for r in rows]),
            pa.array(
                [_time(r.get("captured_at"), r["_at"]) for r in rows], type=pa.timestamp("ms", tz="UTC")
            ),
            pa.array([r["dhash"] for r in rows]),
            pa.array([r["sha256"] for r in rows]),
            pa.array([r["backbone_sha256"] for r in rows]),
            pa.array([r.get("model_version") or "" for r in rows]),
            pa.array([r["_at"] for r in rows], type=pa.timestamp("ms", tz="UTC")),
            features,
        ],
        schema=row_schema(width),
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def _error(exc: Exception, bucket: str, key: str, operation: str) -> CamsortError:
    where = f"s3://{bucket}/{key}"
    if is_transient(exc):
        return TransientError(f"{where}: S3 {operation} failed transiently ({exc}); run the compaction again")
    return StorageError(f"{where}: S3 {operation} failed ({exc}); check the bucket and the compaction role")


# Every AWS call compaction makes: its role grants these and nothing else.
COMPACTION_CALLS = (FeatureArchive,)
