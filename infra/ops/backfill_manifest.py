"""What a backfill job runs on: the frames under a prefix (a listing or an S3 Inventory report),
filtered by LastModified and, with ``--only-missing``, by the results table; and what it costs.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from functions.errors import ConfigurationError
from functions.frames.regions import DEFAULT_MODEL
from functions.iam import requires
from functions.stores.results import ResultsTable, object_id, result_sort_key
from infra.local.batch_report import ManifestEntry

# Prices (us-east-1, checked against the AWS pricing pages for this change; see
# docs/archive.md, "The archive at scale"): S3 Batch Operations $0.25 per job + $1.00 per million objects
# processed; Lambda $0.20 per million requests, arm64 $0.0000133334 per GB-second.
BATCH_JOB_USD = 0.25
BATCH_PER_MILLION_OBJECTS_USD = 1.00
LAMBDA_PER_MILLION_REQUESTS_USD = 0.20
LAMBDA_ARM64_GB_SECOND_USD = 0.0000133334


@dataclass(frozen=True)
class Candidate:
    bucket: str
    key: str
    version_id: str | None
    etag: str
    last_modified: datetime
    size: int

    @property
    def object_version(self) -> str:
        """The results table's sort key for the live result (as the function computes it)."""
        return self.version_id or self.etag

    def entry(self) -> ManifestEntry:
        return ManifestEntry(self.bucket, self.key, self.version_id)


def parse_s3_uri(uri: str, what: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or len(uri) <= 5:
        raise ConfigurationError(f"{what} {uri!r}: write it as s3://bucket/prefix/")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix


@requires("s3:GetBucketVersioning", "s3:ListBucket", "s3:ListBucketVersions", resource="frames-bucket")
def list_frames(
    s3: Any, bucket: str, prefix: str, since: datetime | None = None, until: datetime | None = None
) -> list[Candidate]:
    """The current version of every object under ``prefix``, LastModified in [since, until]."""
    versioned = s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"
    found: list[Candidate] = []
    if versioned:
        pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
        objects = (v for page in pages for v in page.get("Versions", []) if v.get("IsLatest"))
    else:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        objects = (o for page in pages for o in page.get("Contents", []))
    for obj in objects:
        if obj["Key"].endswith("/"):
            continue  # folder placeholders
        candidate = Candidate(
            bucket,
            obj["Key"],
            obj.get("VersionId") if versioned else None,
            obj["ETag"].strip('"'),
            obj["LastModified"],
            int(obj.get("Size", 0)),
        )
        if _in_range(candidate.last_modified, since, until):
            found.append(candidate)
    return found


@requires("s3:GetObject", resource="inventory")
def inventory_frames(
    s3: Any, manifest_uri: str, prefix: str, since: datetime | None = None, until: datetime | None = None
) -> list[Candidate]:
    """The current objects under ``prefix`` listed by an S3 Inventory report (CSV format).

    ``manifest_uri`` is the inventory's ``manifest.json``; its ``fileSchema`` must include
    Bucket, Key, Size, LastModifiedDate and ETag (IsLatest/IsDeleteMarker/VersionId when the
    inventory lists all versions). ORC and Parquet inventories are refused by name.
    """
    bucket, key = parse_s3_uri(manifest_uri, "--inventory")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    if manifest.get("fileFormat") != "CSV":
        raise ConfigurationError(
            f"{manifest_uri}: inventory format {manifest.get('fileFormat')!r}; only CSV inventories are read "
            "(configure the inventory with Format CSV)"
        )
    fields = [name.strip() for name in manifest["fileSchema"].split(",")]
    missing = {"Bucket", "Key", "Size", "LastModifiedDate", "ETag"} - set(fields)
    if missing:
        raise ConfigurationError(
            f"{manifest_uri}: the inventory lacks the fields {sorted(missing)}; add them"
        )
    destination = manifest.get("destinationBucket", "").removeprefix("arn:aws:s3:::") or bucket
    found: list[Candidate] = []
    for file in manifest["files"]:
        data = s3.get_object(Bucket=destination, Key=file["key"])["Body"].read()
        text = gzip.decompress(data).decode() if file["key"].endswith(".gz") else data.decode()
        for row in csv.reader(io.StringIO(text)):
            values = dict(zip(fields, row, strict=False))
            key_ = unquote_plus(values["Key"])  # inventory keys are URL-encoded
            if not key_.startswith(prefix) or key_.endswith("/"):
                continue
            if values.get("IsLatest", "true") != "true" or values.get("IsDeleteMarker", "false") == "true":
                continue
            modified = datetime.fromisoformat(values["LastModifiedDate"].replace("Z", "+00:00"))
            if _in_range(modified, since, until):
                found.append(
                    Candidate(
                        values["Bucket"],
                        key_,
                        values.get("VersionId") or None,
                        values["ETag"].strip('"'),
                        modified,
                        int(values["Size"] or 0),
                    )
                )
    return found


def interleave_by_folder(candidates: list[Candidate], prefix: str) -> list[Candidate]:
    """Round-robin over the first folder under ``prefix`` (the camera, for frames/): camera A's
    first frame, camera B's first, ..., then the second of each.

    A listing is in key order, camera after camera, so a job would write one camera's
    ``by_camera`` partition at full speed (1,000 WRU/s per partition binds at ~88 concurrent
    invocations). Batch Operations does not promise to follow the manifest's order; interleaving
    costs nothing and spreads the writes wherever it roughly does. Within a folder the order stays.
    """
    folders: dict[str, list[Candidate]] = {}
    for candidate in candidates:
        folder = candidate.key[len(prefix) :].split("/", 1)[0] if candidate.key.startswith(prefix) else ""
        folders.setdefault(folder, []).append(candidate)
    queues = list(folders.values())
    return [queue[i] for i in range(max(map(len, queues), default=0)) for queue in queues if i < len(queue)]


def without_results(
    table: ResultsTable,
    candidates: list[Candidate],
    model_version: str | None,
    model_name: str = DEFAULT_MODEL,
) -> list[Candidate]:
    """The candidates with no result yet: the live one (``model_version`` None) or that version's
    (of ``model_name``: a named model's job commits one item per frame it answered, as any job).

    A result may be keyed by the version id or by the ETag (whichever its event carried: moto's
    notifications omit versionId), so both are looked up.
    """
    keys = [
        [
            (object_id(c.bucket, c.key), result_sort_key(version, model_version, model_name))
            for version in dict.fromkeys((c.object_version, c.etag))
        ]
        for c in candidates
    ]
    existing = table.existing_sequencers(key for options in keys for key in options)
    return [c for c, options in zip(candidates, keys, strict=True) if not any(k in existing for k in options)]


@dataclass(frozen=True)
class CostEstimate:
    objects: int
    batch_usd: float
    lambda_requests_usd: float
    lambda_compute_usd: float
    per_frame_s: float
    memory_mb: int

    @property
    def total_usd(self) -> float:
        return self.batch_usd + self.lambda_requests_usd + self.lambda_compute_usd


def estimate_cost(objects: int, *, per_frame_s: float, memory_mb: int) -> CostEstimate:
    """One job over ``objects`` frames, one Lambda invocation per frame (as Batch Operations invokes)."""
    return CostEstimate(
        objects=objects,
        batch_usd=BATCH_JOB_USD + BATCH_PER_MILLION_OBJECTS_USD * objects / 1e6,
        lambda_requests_usd=LAMBDA_PER_MILLION_REQUESTS_USD * objects / 1e6,
        lambda_compute_usd=objects * per_frame_s * memory_mb / 1024 * LAMBDA_ARM64_GB_SECOND_USD,
        per_frame_s=per_frame_s,
        memory_mb=memory_mb,
    )


def _in_range(moment: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or moment >= since) and (until is None or moment <= until)
