"""A training set from the Parquet feature archive (functions/archive/compaction.py), as a :class:`ShardSet`.

``load_parquet_features("s3://bucket/training/", "s3://bucket/archive/features/<backbone>/")``
yields exactly what ``training.features.shards.load_feature_shards`` yields for the same frames (same
order, labels, float16 features, sha256s, dhash bits, model versions), so everything downstream
(groups, folds, heads, parity) is unchanged: it is one more feature source. What differs is the
cost: a few Parquet reads instead of two GETs per frame, and filters on ``camera`` (a partition:
other cameras' files are never opened) and capture time (``day`` prunes partitions,
``captured_at`` the rows).

Memory stays bounded by streaming: a first pass reads only the small columns (key, times,
hashes) and decides each row's place; a second pass streams the vectors batch by batch into
one preallocated float16 [N, F] matrix. The peak is that matrix plus one batch, never the
Arrow table plus its NumPy copy.

The archive keeps every (key, version) ever packed; like the shards' key pointers, training
takes each key's current row (the latest ``featurized_at``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from functions.archive.compaction import ARCHIVE_FEATURES_PREFIX
from functions.frames.dhash import from_hex
from training.data.loading import DatasetError, parse_s3_uri
from training.features.shards import ShardSet, list_keys

SMALL_COLUMNS = ["bucket", "key", "sha256", "dhash", "model_version", "featurized_at"]
BATCH_ROWS = 16_384  # 64 MB of float16 vectors at 2048 features


def is_parquet_features(features_uri: str) -> bool:
    """True for the compacted archive (``s3://bucket/archive/features/<backbone>/``)."""
    return parse_s3_uri(features_uri)[1].startswith(ARCHIVE_FEATURES_PREFIX)


def arrow_s3(s3_client: Any):
    """pyarrow's S3 filesystem as ``s3_client`` is: its endpoint, region and credentials (so a
    local moto server, a role's session or a profile reach the same objects as boto3 does)."""
    from pyarrow import fs

    endpoint = s3_client.meta.endpoint_url
    default = f"https://s3.{s3_client.meta.region_name}.amazonaws.com"
    # botocore exposes a client's credentials only through its signer.
    credentials = s3_client._request_signer._credentials
    frozen = credentials.get_frozen_credentials() if credentials else None
    return fs.S3FileSystem(
        region=s3_client.meta.region_name,
        endpoint_override=None if endpoint in (default, "https://s3.amazonaws.com") else endpoint,
        access_key=frozen.access_key if frozen else None,
        secret_key=frozen.secret_key if frozen else None,
        session_token=frozen.token if frozen else None,
    )


def feature_dataset(features_uri: str, filesystem: Any):
    """The archive of one backbone as a pyarrow dataset (Hive partitions ``camera``, ``day``)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    bucket, prefix = parse_s3_uri(features_uri)
    partitioning = ds.partitioning(pa.schema([("camera", pa.string()), ("day", pa.string())]), flavor="hive")
    try:
        return ds.dataset(
            f"{bucket}/{prefix.rstrip('/')}",
            filesystem=filesystem,
            format="parquet",
            partitioning=partitioning,
        )
    except (OSError, ValueError) as exc:
        raise DatasetError(
            f"{features_uri}: cannot open the Parquet feature archive ({exc}); run `camsort compact` after the "
            "featurize job"
        ) from exc


def archive_filter(
    source: str,
    cameras: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
):
    """The rows of the training root ``source``, of ``cameras``, captured in [since, until)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    bucket, prefix = parse_s3_uri(source)
    expression = (ds.field("bucket") == bucket) & pc.starts_with(ds.field("key"), pattern=prefix)
    if cameras:
        expression &= ds.field("camera").isin(cameras)
    moment = pa.timestamp("ms", tz="UTC")
    if since is not None:
        expression &= (ds.field("day") >= since.strftime("%Y-%m-%d")) & (
            ds.field("captured_at") >= pa.scalar(since, type=moment)
        )
    if until is not None:
        expression &= (ds.field("day") <= until.strftime("%Y-%m-%d")) & (
            ds.field("captured_at") < pa.scalar(until, type=moment)
        )
    return expression


def load_parquet_features(
    source: str,
    features_uri: str,
    *,
    s3_client: Any,
    cameras: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    min_per_label: int = 2,
    filesystem: Any = None,
    batch_rows: int = BATCH_ROWS,
) -> ShardSet:
    bucket, prefix = parse_s3_uri(source)
    backbone = parse_s3_uri(features_uri)[1].rstrip("/").rsplit("/", 1)[-1]
    if len(backbone) != 64:
        raise DatasetError(
            f"{features_uri}: expected s3://bucket/{ARCHIVE_FEATURES_PREFIX}<backbone sha256>/, as written by "
            "`camsort compact`"
        )
    dataset = feature_dataset(features_uri, filesystem or arrow_s3(s3_client))
    where = archive_filter(source, cameras, since, until)

    # Pass 1: the small columns; each key's current row wins.
    current: dict[str, dict[str, Any]] = {}
    for batch in dataset.to_batches(columns=SMALL_COLUMNS, filter=where, batch_size=batch_rows):
        for row in batch.to_pylist():
            parts = row["key"][len(prefix) :].split("/")
            if len(parts) < 2 or any(part.startswith(".") for part in parts):
                continue
            held = current.get(row["key"])
            if held is None or row["featurized_at"] > held["featurized_at"]:
                current[row["key"]] = {**row, "label": parts[0]}
    keys = sorted(current)
    labels = sorted({current[k]["label"] for k in keys})
    if len(labels) < 2:
        raise DatasetError(
            f"{features_uri}: archived features for {len(labels)} label(s) under {source}; a classifier needs 2"
        )
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[current[k]["label"]] for k in keys], dtype=np.int64)
    for label in labels:
        if (y == index[label]).sum() < min_per_label:
            raise DatasetError(f"{source}: label '{label}' has fewer than {min_per_label} featurized frames")
    slot = {(k, current[k]["featurized_at"]): i for i, k in enumerate(keys)}

    # Pass 2: the vectors, streamed into their places.
    width = dataset.schema.field("features").type.list_size
    features16 = np.empty((len(keys), width), dtype=np.float16)
    filled = np.zeros(len(keys), dtype=bool)
    columns = ["key", "featurized_at", "features"]
    for batch in dataset.to_batches(columns=columns, filter=where, batch_size=batch_rows):
        vectors = batch.column("features").flatten().to_numpy(zero_copy_only=False).reshape(-1, width)
        for row, (key, at) in enumerate(
            zip(batch.column("key").to_pylist(), batch.column("featurized_at").to_pylist(), strict=True)
        ):
            place = slot.get((key, at))
            if place is not None:
                features16[place] = vectors[row]
                filled[place] = True
    if not filled.all():
        raise DatasetError(f"{features_uri}: the archive changed while it was read; run the training again")

    frames = {
        f"s3://{bucket}/{k}"
        for k in list_keys(s3_client, bucket, prefix)
        if len(k[len(prefix) :].split("/")) >= 2
    }
    uris = [f"s3://{bucket}/{k}" for k in keys]
    return ShardSet(
        uris=uris,
        labels=labels,
        y=y,
        features16=features16,
        sha256s=[current[k]["sha256"] for k in keys],
        hashes=np.stack([from_hex(current[k]["dhash"]) for k in keys]),
        backbone_sha256=backbone,
        missing=sorted(frames - set(uris)) if not (cameras or since or until) else [],
        model_versions=sorted({current[k]["model_version"] for k in keys if current[k]["model_version"]}),
    )
