"""Camera simulator: K cameras upload synthetic 1280x720 JPEG frames to the frames bucket.

Keys carry the capture time: ``frames/cam-01/20261122T073900123Z.jpg`` (the function's default
key pattern reads it from there). On request the
simulator also uploads one object of each bad kind (truncated JPEG, empty object, a text file
named .jpg, an object above the function's byte limit) and re-sends one frame's S3
notification to the queue (S3 and SQS deliver at least once; the function must write it once).

It returns a manifest of everything it uploaded, so the caller can account for every object:
each must end with exactly one result item or one dead-letter entry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote_plus

import numpy as np

from functions.errors import EmptyImageError, NotAnImageError, TooManyBytesError, TruncatedImageError
from functions.frames.keys import frame_key
from infra.local.stack import LocalStack
from infra.ops.cameras import CameraCredentials

if TYPE_CHECKING:
    from training.data.scene_tamper import TamperPlan

FRAME = "frame"
# Bad kinds -> the ``reason`` the function must record for them.
BAD_KINDS = {
    "truncated": TruncatedImageError.reason,
    "empty": EmptyImageError.reason,
    "not_an_image": NotAnImageError.reason,
    "oversized": TooManyBytesError.reason,
}


@dataclass(frozen=True)
class UploadedObject:
    key: str
    camera_id: str
    kind: str  # FRAME or one of BAD_KINDS
    label: str | None  # the label the synthetic frame was rendered as (frames only)
    size: int
    etag: str  # without quotes
    captured_at: datetime  # the time in the key
    uploaded_at: float  # time.time() when PutObject returned
    tamper: str | None = None  # what spoilt the frame (training.data.scene_tamper), None: healthy

    @property
    def expected_reason(self) -> str | None:
        return BAD_KINDS.get(self.kind)


@dataclass
class SimulationManifest:
    bucket: str
    objects: list[UploadedObject] = field(default_factory=list)
    # Keys whose notification was sent to the queue a second time.
    duplicated_notifications: list[str] = field(default_factory=list)

    @property
    def frames(self) -> list[UploadedObject]:
        return [obj for obj in self.objects if obj.kind == FRAME]

    def by_key(self) -> dict[str, UploadedObject]:
        return {obj.key: obj for obj in self.objects}

    def truth_intervals(self) -> list:
        """Ground truth: per camera, the intervals a bus or a car was in front of it (infra/demo/story.py)."""
        from functions.frames.keys import format_timestamp
        from infra.demo.story import truth_intervals

        intervals = []
        for camera_id in sorted({obj.camera_id for obj in self.frames}):
            frames = sorted((o.captured_at, o.label) for o in self.frames if o.camera_id == camera_id)
            intervals += truth_intervals(
                camera_id, [(format_timestamp(t), str(label)) for t, label in frames]
            )
        return intervals


def camera_ids(cameras: int) -> list[str]:
    return [f"cam-{index + 1:02d}" for index in range(cameras)]


def bad_object(kind: str, valid_jpeg: bytes, *, oversized_bytes: int) -> bytes:
    """The bytes of one bad upload of ``kind``."""
    if kind == "truncated":
        return valid_jpeg[: len(valid_jpeg) // 2]  # a JPEG cut mid-scan, as from a dropped connection
    if kind == "empty":
        return b""
    if kind == "not_an_image":
        return b"camera firmware 2.3.1: sensor fault, no frame captured\n"
    if kind == "oversized":
        # A real JPEG with padding after its end marker: decodable, only too big for the limit.
        return valid_jpeg + b"\0" * max(0, oversized_bytes - len(valid_jpeg))
    raise ValueError(f"unknown bad kind {kind!r}; expected one of {sorted(BAD_KINDS)}")


def s3_notification_body(
    stack: LocalStack, key: str, *, size: int, etag: str, event_time: str, sequencer: str | None = None
) -> str:
    """An ObjectCreated:Put notification body, field for field as S3 (and moto) send it.

    moto omits S3's ``sequencer``; pass one to craft the event ordering AWS would give.
    """
    suffix = "." + key.rsplit(".", 1)[-1]
    s3_object = {"key": quote_plus(key), "size": size, "eTag": etag}
    if sequencer is not None:
        s3_object["sequencer"] = sequencer
    return json.dumps(
        {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": stack.region,
                    "eventTime": event_time,
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "configurationId": f"frames-{suffix.lstrip('.')}",
                        "bucket": {"name": stack.names.bucket, "arn": f"arn:aws:s3:::{stack.names.bucket}"},
                        "object": s3_object,
                    },
                }
            ]
        }
    )


def simulate_cameras(
    stack: LocalStack,
    *,
    cameras: int = 4,
    frames_per_camera: int = 50,
    frames_per_second: float | None = None,
    bad_objects: bool = False,
    oversized_bytes: int = 3 * 1024 * 1024,
    duplicate_notification: bool = False,
    labels: tuple[str, ...] | None = None,
    seed: int = 0,
    on_upload: Callable[[UploadedObject], None] | None = None,
    camera_credentials: Mapping[str, CameraCredentials] | None = None,
    scenes: bool = False,
    views: bool = False,
    tampers: Sequence[TamperPlan] = (),
) -> SimulationManifest:
    """Upload ``cameras`` x ``frames_per_camera`` frames round-robin (plus bad objects on request).

    ``frames_per_second`` is per camera (None: as fast as possible). The frame label of each
    upload is drawn from ``labels`` with a seeded generator, so a run is reproducible. With
    ``scenes``, labels persist instead (``infra.demo.story.scene_labels``: an empty road, a bus that
    stays, a car passing); each frame is still an independent render of its label, and
    ``manifest.truth_intervals()`` is the ground truth.
    ``camera_credentials`` (camera id -> :func:`infra.ops.cameras.add_camera`'s credentials): each
    camera uploads with its own least-privilege key instead of the local admin's.
    With ``views``, each camera looks at its own fixed street (``training.data.scene_tamper``:
    only the traffic and the noise change, as in front of a real camera), and ``tampers`` spoil
    some cameras from some round on (a covered frame shows no vehicle: its label is the
    background's); each frame's ``tamper`` is in the manifest.
    """
    from infra.demo.story import BACKGROUND
    from training.data.scene_tamper import tamper_of, view_jpeg, view_seed
    from training.data.synthetic import LABELS, frame_jpeg  # Pillow drawing; only the simulator needs it

    labels = tuple(labels or LABELS)
    rng = np.random.default_rng(seed)
    uploads = _CameraUploads(stack, camera_credentials or {}, on_upload)
    ids = camera_ids(cameras)
    round_interval = 1.0 / frames_per_second if frames_per_second else 0.0
    # Bad objects go in the middle of the run, one per camera round-robin.
    bad_round = frames_per_camera // 2
    started = time.monotonic()
    scripted = _scene_scripts(ids, frames_per_camera, seed) if scenes else {}
    for round_index in range(frames_per_camera):
        for camera_index, camera_id in enumerate(ids):
            label = labels[int(rng.integers(len(labels)))]
            if scripted:
                label = scripted[camera_id][round_index]
            frame_seed = seed * 1_000_000 + camera_index * 10_000 + round_index
            if views or tampers:
                tamper = tamper_of(tampers, camera_id, round_index)
                label = BACKGROUND if tamper == "covered" else label
                body = view_jpeg(view_seed(seed, camera_id), label, round_index, tamper=tamper)
                uploaded = uploads.put(camera_id, FRAME, label, body, tamper=tamper)
            else:
                uploaded = uploads.put(camera_id, FRAME, label, frame_jpeg(label, frame_seed))
            if duplicate_notification and not uploads.manifest.duplicated_notifications:
                _resend_notification(stack, uploads.sqs, uploads.s3, uploaded)
                uploads.manifest.duplicated_notifications.append(uploaded.key)
        if bad_objects and round_index == bad_round:
            valid = frame_jpeg(labels[0], seed * 1_000_000 + 999_999)
            for index, kind in enumerate(BAD_KINDS):
                body = bad_object(kind, valid, oversized_bytes=oversized_bytes)
                uploads.put(ids[index % len(ids)], kind, None, body)
        if round_interval:
            # Keep the per-camera rate without drifting: sleep until this round's slot ends.
            delay = started + (round_index + 1) * round_interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    return uploads.manifest


def _scene_scripts(ids: list[str], frames_per_camera: int, seed: int) -> dict[str, list[str]]:
    """Per camera, the label of each round when labels persist (an empty road, a bus that stays...)."""
    from infra.demo.story import scene_labels

    return {
        camera_id: scene_labels(np.random.default_rng([seed, index]), frames_per_camera)
        for index, camera_id in enumerate(ids)
    }


class _CameraUploads:
    """The cameras' PutObjects (each camera with its own key where it has one), recorded in a manifest."""

    def __init__(
        self,
        stack: LocalStack,
        camera_credentials: Mapping[str, CameraCredentials],
        on_upload: Callable[[UploadedObject], None] | None,
    ) -> None:
        self.stack = stack
        self.s3 = stack.client("s3")
        self.sqs = stack.client("sqs")
        self.camera_s3 = {
            camera_id: credentials.session(stack.region).client("s3", endpoint_url=stack.endpoint_url)
            for camera_id, credentials in camera_credentials.items()
        }
        self.on_upload = on_upload
        self.manifest = SimulationManifest(bucket=stack.names.bucket)
        self.last_capture: dict[str, datetime] = {}

    def capture_time(self, camera_id: str) -> datetime:
        # Strictly increasing per camera at millisecond resolution, so no two uploads share a key.
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        previous = self.last_capture.get(camera_id)
        if previous is not None and now <= previous:
            now = previous + timedelta(milliseconds=1)
        self.last_capture[camera_id] = now
        return now

    def put(
        self, camera_id: str, kind: str, label: str | None, body: bytes, tamper: str | None = None
    ) -> UploadedObject:
        captured_at = self.capture_time(camera_id)
        key = frame_key(self.stack.names.frames_prefix, camera_id, captured_at)
        client = self.camera_s3.get(camera_id, self.s3)
        response = client.put_object(
            Bucket=self.stack.names.bucket, Key=key, Body=body, ContentType="image/jpeg"
        )
        uploaded = UploadedObject(
            key=key,
            camera_id=camera_id,
            kind=kind,
            label=label,
            size=len(body),
            etag=response["ETag"].strip('"'),
            captured_at=captured_at,
            uploaded_at=time.time(),
            tamper=tamper,
        )
        self.manifest.objects.append(uploaded)
        if self.on_upload is not None:
            self.on_upload(uploaded)
        return uploaded


def _resend_notification(stack: LocalStack, sqs, s3, uploaded: UploadedObject) -> None:
    # The body S3 sent cannot be read back without taking the message from the worker, so it is
    # rebuilt field for field from the object (same key encoding, size, ETag, event time).
    head = s3.head_object(Bucket=stack.names.bucket, Key=uploaded.key)
    event_time = head["LastModified"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    body = s3_notification_body(
        stack, uploaded.key, size=head["ContentLength"], etag=head["ETag"].strip('"'), event_time=event_time
    )
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)
