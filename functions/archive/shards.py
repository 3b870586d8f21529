"""Featurize mode (a Batch Operations job with ``mode: featurize``): each frame's pooled features
to S3, for training at scale without featurizing locally.

Layout under the job's ``featuresUri`` (``s3://bucket/features/``), keyed as the local feature
cache is (training/features/featurize.py: content sha256 x backbone sha256):

* ``<backbone_sha256>/<sha[:2]>/<sha256>.npy``: the features of one frame content, float16
  [2048] (``numpy.save``); written once per content, whichever key it came under;
* ``<backbone_sha256>/keys/<bucket>/<key>.json``: one per source object: ``sha256``, ``dhash``
  (hex, functions/frames/dhash.py, so training groups near-duplicates as it does from pixels), etag,
  version, the model version that computed it, the camera (``camera_id``: the function's key
  pattern applied after the frames prefix; null for a key outside it, e.g. a training set laid out
  by label) and the capture time (``captured_at``: the key's, else the object's LastModified, as
  results record it). Labels come from these keys (the first folder under the training root),
  exactly as when training from the frames themselves. ``functions/archive/compaction.py`` packs
  these into Parquet partitioned by camera and capture day.

Idempotent: a source object whose pointer already names the same content is a duplicate; a
content whose features exist is not run through the model again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from botocore.exceptions import BotoCoreError, ClientError

from functions.archive.jobs import JobArguments, JobArgumentsError
from functions.archive.shard_layout import FEATURES_DTYPE, encode_features, features_key, pointer_key
from functions.errors import BadInputError, CamsortError, StorageError, TransientError, UnexpectedKeyError
from functions.frames.dhash import dhash, to_hex
from functions.frames.events import FrameEvent
from functions.frames.keys import format_timestamp, parse_key
from functions.frames.outcome import FrameOutcome
from functions.iam import requires
from functions.stores.storage import error_code, is_transient
from functions.wiring import App


class ShardStore:
    """S3 adapter for feature shards and their key pointers."""

    def __init__(self, s3_client: Any):
        self._s3 = s3_client

    @requires("s3:GetObject", resource="features")
    def read_json(self, bucket: str, key: str) -> dict[str, Any] | None:
        try:
            response = self._s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in ("NoSuchKey", "404"):
                return None
            raise self._error(exc, bucket, key, "GetObject") from exc
        except BotoCoreError as exc:
            raise self._error(exc, bucket, key, "GetObject") from exc
        return json.loads(response["Body"].read())

    @requires("s3:GetObject", resource="features")
    def exists(self, bucket: str, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404 or error_code(exc) in ("NoSuchKey", "404", "NotFound"):
                return False
            raise self._error(exc, bucket, key, "HeadObject") from exc
        except BotoCoreError as exc:
            raise self._error(exc, bucket, key, "HeadObject") from exc
        return True

    @requires("s3:PutObject", resource="features")
    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        try:
            self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, bucket, key, "PutObject") from exc

    @staticmethod
    def _error(exc: Exception, bucket: str, key: str, operation: str) -> CamsortError:
        where = f"s3://{bucket}/{key}"
        if is_transient(exc):
            return TransientError(f"{where}: S3 {operation} failed transiently ({exc}); it will be retried")
        return StorageError(
            f"{where}: S3 {operation} failed ({exc}); check the featuresUri and the permissions"
        )


@dataclass
class _Item:
    frame: FrameEvent
    data: bytes = b""
    sha256: str = ""
    pixels: np.ndarray | None = None
    pointer: dict[str, Any] | None = None
    cached: bool = False
    camera_id: str | None = None
    captured_at: str = ""


def featurize_frames(frames: list[FrameEvent], app: App, arguments: JobArguments) -> list[FrameOutcome]:
    """Features of every frame to S3 (one batched inference for the contents not seen yet)."""
    backbone = app.model.manifest.backbone_sha256
    if not backbone:
        error = JobArgumentsError(
            f"model {app.model.manifest.model_version}: its manifest records no backbone_sha256, so its "
            "features cannot be keyed like the local feature cache; re-export the model with this camsort"
        )
        return [FrameOutcome(f, "error", detail=f"job arguments: {error}", error=error) for f in frames]
    bucket, _, prefix = (arguments.features_uri or "").removeprefix("s3://").partition("/")
    prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    shards = ShardStore(app.store.s3_client)
    outcomes: dict[int, FrameOutcome] = {}
    pending: list[tuple[int, _Item]] = []
    for index, frame in enumerate(frames):
        item = _Item(frame)
        try:
            outcome = _load(item, app, shards, bucket, prefix, backbone)
        except BadInputError as exc:
            outcome = FrameOutcome(frame, "rejected", reason=exc.reason, detail=str(exc), error=exc)
        except Exception as exc:
            outcome = _failed(frame, exc)
        if outcome:
            outcomes[index] = outcome
        else:
            pending.append((index, item))
    to_compute = [(i, item) for i, item in pending if not item.cached]
    computed: dict[int, np.ndarray] = {}
    if to_compute:
        try:
            _probabilities, features = app.model.predict(np.stack([_pixels(item) for _, item in to_compute]))
            computed = {i: row for (i, _), row in zip(to_compute, features, strict=True)}
        except Exception as exc:
            for i, item in to_compute:
                outcomes[i] = _failed(item.frame, exc)
    for index, item in pending:
        if index in outcomes:
            continue
        try:
            if index in computed:
                shard = features_key(prefix, backbone, item.sha256)
                shards.put(bucket, shard, encode_features(computed[index]), "application/octet-stream")
            pointer = _pointer(item, app, backbone)
            key = pointer_key(prefix, backbone, item.frame.bucket, item.frame.key)
            shards.put(bucket, key, json.dumps(pointer, sort_keys=True).encode(), "application/json")
        except Exception as exc:
            outcomes[index] = _failed(item.frame, exc)
            continue
        source = "the cache" if item.cached else "the model"
        outcomes[index] = FrameOutcome(
            item.frame, "ok", detail=f"features from {source} ({item.sha256[:12]})", written=True
        )
    return [outcomes[i] for i in range(len(frames))]


def _load(
    item: _Item, app: App, shards: ShardStore, bucket: str, prefix: str, backbone: str
) -> FrameOutcome | None:
    frame = item.frame
    stored = app.store.get_frame(
        frame.bucket,
        frame.key,
        etag=frame.etag,
        version_id=frame.version_id,
        max_bytes=app.settings.max_bytes,
    )
    item.frame = frame = FrameEvent(
        **{**frame.__dict__, "etag": stored.etag, "version_id": stored.version_id}
    )
    item.data = stored.data
    item.camera_id, item.captured_at = _camera_and_capture_time(frame.key, stored.last_modified, app)
    item.sha256 = hashlib.sha256(stored.data).hexdigest()
    existing = shards.read_json(bucket, pointer_key(prefix, backbone, frame.bucket, frame.key))
    if existing and existing.get("sha256") == item.sha256:
        return FrameOutcome(frame, "duplicate", detail="features already recorded")
    source = f"s3://{frame.bucket}/{frame.key}"
    item.pixels = app.decode(stored.data, source)
    item.cached = shards.exists(bucket, features_key(prefix, backbone, item.sha256))
    return None


def _pointer(item: _Item, app: App, backbone: str) -> dict[str, Any]:
    return {
        "bucket": item.frame.bucket,
        "key": item.frame.key,
        "etag": item.frame.etag,
        "version_id": item.frame.version_id,
        "sha256": item.sha256,
        "dhash": to_hex(dhash(_pixels(item))),
        "backbone_sha256": backbone,
        "model_version": app.model.manifest.model_version,
        "features_dtype": np.dtype(FEATURES_DTYPE).name,
        "camera_id": item.camera_id,
        "captured_at": item.captured_at,
    }


def _camera_and_capture_time(key: str, last_modified: datetime, app: App) -> tuple[str | None, str]:
    """(camera id or None, capture time): the result item's rule (functions/classify.base_item)."""
    try:
        info = parse_key(key, prefix=app.settings.frames_prefix, pattern=app.settings.key_pattern)
    except UnexpectedKeyError:
        return None, format_timestamp(last_modified)
    return info.camera_id, format_timestamp(info.captured_at or last_modified)


def _pixels(item: _Item) -> np.ndarray:
    assert item.pixels is not None, "only loaded frames reach inference"
    return item.pixels


def _failed(frame: FrameEvent, exc: BaseException) -> FrameOutcome:
    status = "transient" if isinstance(exc, TransientError) else "error"
    return FrameOutcome(frame, status, detail=f"featurize failed: {exc}", error=exc)  # type: ignore[arg-type]
