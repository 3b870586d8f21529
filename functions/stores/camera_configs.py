"""Cameras' regions, read by the function from ``s3://<model bucket>/cameras/<camera_id>.json``.

Why S3 and not a table (docs/regions.md): a configuration is a small document edited by people
and tools (`camsort camera regions set`), the model bucket is versioned (every edit has a
history) and every stage has it, while the state table is optional per stage. Each container
keeps what it read per camera (:class:`CameraConfigs`) and asks again at most every
CAMSORT_CAMERA_CONFIG_TTL_SECONDS with a conditional GET (``If-None-Match``: the ETag it holds):
an unchanged object costs one 304 with no body, a change is picked up within one TTL without a
redeploy, and a camera without an object (404) has no regions, cached likewise.

A configuration that fails validation (a hand-edited object, or a model the deployment no
longer has) is logged as an error on every check and counted (``CameraConfigInvalid``); the
camera keeps the last good configuration this container read, else the whole frame. Why not
fail its frames instead: the frames would go to the DLQ until someone fixed the object, and
the last good regions are what the operator last validated (results, state and events go on
as before); a container with nothing good to keep answers for the whole frame, which is what a
camera without regions gets, so the frame is still answered.

The lookup never decides by message text: 304 and 404 (403 without s3:ListBucket, see
``_ABSENT``) are S3's statuses; a transient failure
keeps the configuration already held (stale by at most the outage), and with none held it is
raised, so SQS retries the frame rather than answer it without its regions.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Literal

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from functions.frames.regions import CameraConfig, RegionConfigError, parse_camera_config
from functions.iam import requires
from functions.observability import logger, metrics
from functions.stores.storage import FrameStore, error_code

CAMERA_CONFIG_PREFIX = "cameras/"
# A camera's configuration is a few regions; anything bigger is a mistake, not a configuration.
MAX_CONFIG_BYTES = 64 * 1024
# S3 answers a missing key with 404 only to a caller who may list the bucket, else with 403
# AccessDenied. The function may not list (the model bucket is usually the frames bucket: it must
# not enumerate it), and its s3:GetObject on cameras/* is derived from this method and checked by
# the tests, so a 403 on a camera's key means the object is not there: no regions.
_ABSENT = frozenset({"NoSuchKey", "404", "AccessDenied", "403"})


def camera_config_key(camera_id: str) -> str:
    """``cameras/<camera_id>.json`` (camera ids are one key segment: no ``/``)."""
    return f"{CAMERA_CONFIG_PREFIX}{camera_id}.json"


@dataclass(frozen=True)
class ConfigObject:
    """What S3 answered for a camera's object: ``absent`` (404), ``unchanged`` (304) or ``found``."""

    status: Literal["absent", "unchanged", "found"]
    etag: str | None = None
    body: bytes = b""


class CameraConfigObjects:
    """The S3 adapter: one conditional GET of one camera's object."""

    def __init__(self, s3_client: Any, bucket: str):
        self._s3 = s3_client
        self.bucket = bucket

    def uri(self, camera_id: str) -> str:
        return f"s3://{self.bucket}/{camera_config_key(camera_id)}"

    @requires("s3:GetObject", resource="camera-configs")
    def fetch(self, camera_id: str, etag: str | None = None) -> ConfigObject:
        """The camera's object unless its ETag is still ``etag``; raises TransientError / StorageError."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": camera_config_key(camera_id)}
        if etag:
            params["IfNoneMatch"] = f'"{etag}"'
        try:
            response = self._s3.get_object(**params)
            body = response["Body"]
            try:
                data = body.read(MAX_CONFIG_BYTES + 1)
            finally:
                body.close()
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 304 or error_code(exc) == "304":
                return ConfigObject("unchanged", etag)
            if status in (403, 404) or error_code(exc) in _ABSENT:
                return ConfigObject("absent")
            raise FrameStore._error(exc, self.uri(camera_id), "GetObject") from exc
        except BotoCoreError as exc:
            raise FrameStore._error(exc, self.uri(camera_id), "GetObject") from exc
        return ConfigObject("found", str(response["ETag"]).strip('"'), data)


Fetch = Callable[[str, str | None], ConfigObject]


@dataclass(frozen=True)
class _Held:
    config: CameraConfig  # what the camera's frames get
    etag: str | None  # the object's ETag (None: no object)
    checked_at: float
    problem: str | None = None  # why the object at ``etag`` was refused (``config`` is then the fallback)


class CameraConfigs:
    """Per container: each camera's configuration, re-checked at most every ``ttl_seconds``.

    ``fetch`` is :meth:`CameraConfigObjects.fetch` (tests give their own); ``known_models`` are
    the deployment's model names, which a region's ``model`` must be one of. Thread-safe: the
    frames of an invocation look their cameras up concurrently; one camera is fetched once (a lock
    per camera, so that cameras whose TTL ran out are re-read side by side, not one after another).
    """

    def __init__(
        self,
        fetch: Fetch,
        *,
        ttl_seconds: float,
        known_models: Collection[str],
        source: Callable[[str], str] = camera_config_key,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._fetch = fetch
        self.ttl_seconds = ttl_seconds
        self.known_models = frozenset(known_models)
        self._source = source
        self._clock = clock
        self._held: dict[str, _Held] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()  # guards _locks

    def config_for(self, camera_id: str) -> CameraConfig:
        """The camera's configuration now (no regions: ``CameraConfig(camera_id, ())``)."""
        with self._lock:
            camera_lock = self._locks.setdefault(camera_id, threading.Lock())
        with camera_lock:
            now = self._clock()
            held = self._held.get(camera_id)
            if held is not None and now - held.checked_at < self.ttl_seconds:
                return held.config
            try:
                answer = self._fetch(camera_id, held.etag if held else None)
            except Exception as exc:
                if held is None:
                    raise  # nothing to go on: the frame is retried (or fails) with this error
                logger.warning(
                    f"{self._source(camera_id)}: not re-read ({exc}); keeping the configuration held"
                )
                return held.config
            held = self._next(camera_id, held, answer, now)
            self._held[camera_id] = held
            if held.problem:
                logger.error(held.problem)
                metrics.add_metric(name="CameraConfigInvalid", unit=MetricUnit.Count, value=1)
            return held.config

    def _next(self, camera_id: str, held: _Held | None, answer: ConfigObject, now: float) -> _Held:
        if answer.status == "unchanged" and held is not None:
            return _Held(held.config, held.etag, now, held.problem)
        if (
            answer.status == "absent" or answer.status == "unchanged"
        ):  # (unchanged without a held one: absent)
            return _Held(CameraConfig(camera_id, ()), None, now)
        try:
            config = self.parse(camera_id, answer.body)
        except RegionConfigError as exc:
            fallback = held.config if held is not None else CameraConfig(camera_id, ())
            kept = (
                "its last good configuration"
                if held is not None and held.config.regions
                else "the whole frame"
            )
            return _Held(
                fallback, answer.etag, now, f"{exc}; camera {camera_id} keeps {kept} until it is fixed"
            )
        return _Held(config, answer.etag, now)

    def parse(self, camera_id: str, body: bytes) -> CameraConfig:
        """The object's bytes -> a validated configuration; RegionConfigError saying what is wrong."""
        source = self._source(camera_id)
        if len(body) > MAX_CONFIG_BYTES:
            raise RegionConfigError(
                f"{source}: larger than {MAX_CONFIG_BYTES} bytes; a configuration is a few regions"
            )
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RegionConfigError(f"{source}: not valid JSON ({exc})") from exc
        return parse_camera_config(data, camera_id=camera_id, known_models=self.known_models, source=source)
