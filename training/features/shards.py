"""Training sets from feature shards written by a featurize backfill (functions/archive/shards.py).

``load_feature_shards("s3://bucket/training/", "s3://bucket/features/<backbone_sha256>/")`` reads
the key pointers of the objects under the training root (label = first folder under the root,
the same rule and the same order as training/data/dataset.py) and their float16 features; no image is
downloaded, nothing is featurized locally. Near-duplicate groups come from the dhash each pointer
carries, so cross-validation folds are the ones training from the frames would use.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from functions.archive.shard_layout import KEYS_FOLDER, decode_features
from functions.frames.dhash import from_hex
from training.data.loading import DatasetError, parse_s3_uri


@dataclass
class ShardSet:
    uris: list[str]
    labels: list[str]
    y: np.ndarray  # int64 [N]
    features16: np.ndarray  # float16 [N, F], as stored
    sha256s: list[str]
    hashes: np.ndarray  # bool [N, 256]
    backbone_sha256: str
    missing: list[str] = field(default_factory=list)  # training objects with no features yet
    model_versions: list[str] = field(default_factory=list)  # the model version(s) that wrote them

    @property
    def features(self) -> np.ndarray:
        """float32 [N, F] (LightGBM trains on float32)."""
        return self.features16.astype(np.float32)


def load_feature_shards(
    source: str, features_uri: str, *, s3_client: Any, min_per_label: int = 2, max_workers: int = 8
) -> ShardSet:
    bucket, prefix = parse_s3_uri(source)
    features_bucket, features_prefix = parse_s3_uri(features_uri)
    features_prefix = features_prefix if features_prefix.endswith("/") else features_prefix + "/"
    backbone = features_prefix.rstrip("/").rsplit("/", 1)[-1]
    if len(backbone) != 64:
        raise DatasetError(
            f"{features_uri}: expected s3://bucket/<features prefix>/<backbone sha256>/ (the model manifest's "
            "backbone_sha256), as written by `camsort backfill --mode featurize`"
        )
    pointers_root = f"{features_prefix}{KEYS_FOLDER}/{bucket}/"
    pointer_keys = list_keys(s3_client, features_bucket, pointers_root + prefix)
    entries = []
    for pointer in pointer_keys:
        key = pointer[len(pointers_root) : -len(".json")]
        parts = key[len(prefix) :].split("/")
        if len(parts) < 2 or any(part.startswith(".") for part in parts):
            continue
        entries.append((f"s3://{bucket}/{key}", parts[0], pointer))
    entries.sort()
    frames = {
        f"s3://{bucket}/{k}"
        for k in list_keys(s3_client, bucket, prefix)
        if len(k[len(prefix) :].split("/")) >= 2
    }
    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        loaded = list(
            pool.map(lambda e: _read(s3_client, features_bucket, features_prefix, backbone, e[2]), entries)
        )
    labels = sorted({label for _, label, _ in entries})
    if len(labels) < 2:
        raise DatasetError(
            f"{features_uri}: feature shards for {len(labels)} label(s) under {source}; a classifier needs 2"
        )
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[label] for _, label, _ in entries], dtype=np.int64)
    for label in labels:
        if (y == index[label]).sum() < min_per_label:
            raise DatasetError(f"{source}: label '{label}' has fewer than {min_per_label} featurized frames")
    return ShardSet(
        uris=[uri for uri, _, _ in entries],
        labels=labels,
        y=y,
        features16=np.stack([features for features, *_ in loaded]),
        sha256s=[sha for _, sha, _, _ in loaded],
        hashes=np.stack([bits for _, _, bits, _ in loaded]),
        backbone_sha256=backbone,
        missing=sorted(frames - {uri for uri, _, _ in entries}),
        model_versions=sorted({version for *_, version in loaded if version}),
    )


def _read(
    s3: Any, bucket: str, prefix: str, backbone: str, pointer_key: str
) -> tuple[np.ndarray, str, np.ndarray, str]:
    pointer = json.loads(s3.get_object(Bucket=bucket, Key=pointer_key)["Body"].read())
    if pointer.get("backbone_sha256") != backbone:
        raise DatasetError(
            f"s3://{bucket}/{pointer_key}: written for backbone {pointer.get('backbone_sha256')}, not {backbone}"
        )
    sha = pointer["sha256"]
    shard = f"{prefix}{sha[:2]}/{sha}.npy"
    data = s3.get_object(Bucket=bucket, Key=shard)["Body"].read()
    return (
        decode_features(data, f"s3://{bucket}/{shard}"),
        sha,
        from_hex(pointer["dhash"]),
        str(pointer.get("model_version") or ""),
    )


def list_keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [obj["Key"] for page in pages for obj in page.get("Contents", []) if not obj["Key"].endswith("/")]


def download_frames(
    uris: list[str], *, s3_client: Any, max_workers: int = 8
) -> dict[str, tuple[str, np.ndarray]]:
    """uri -> (sha256 of its bytes, pixels from the function's loader) for the frames that still load;
    a frame deleted or no longer loadable is absent (the caller says what that means)."""
    from training.data.loading import Candidate, load_candidates, s3_fetcher

    candidates = []
    for uri in uris:
        bucket, _, key = uri.removeprefix("s3://").partition("/")  # a key: no trailing / added
        candidates.append(Candidate(uri, "", s3_fetcher(s3_client, bucket, key)))
    items, _ = load_candidates(candidates, max_workers=max_workers, progress=False, what="frames")
    return {item.uri: (item.sha256, item.pixels) for item in items}
