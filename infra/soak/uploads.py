"""The soak's cameras: concurrent uploads, some bad, some overwritten, some notified twice."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from infra.local.stack import LocalStack

if TYPE_CHECKING:
    from infra.soak.run import SoakSettings

BAD_KINDS = ("truncated", "empty", "not_an_image", "oversized")


def upload_all(stack: LocalStack, settings: SoakSettings) -> Counter[str]:
    import random

    from functions.frames.keys import frame_key
    from infra.demo.simulator import bad_object, s3_notification_body
    from training.data.synthetic import LABELS, frame_jpeg

    pool = [frame_jpeg(LABELS[i % len(LABELS)], settings.seed * 1000 + i, 320, 240) for i in range(24)]
    s3, sqs = stack.client("s3"), stack.client("sqs")
    counts: Counter[str] = Counter()
    lock = threading.Lock()
    base = datetime.now(UTC).replace(microsecond=0)
    per_camera = [settings.frames // settings.cameras + (1 if c < settings.frames % settings.cameras else 0)
                  for c in range(settings.cameras)]  # fmt: skip

    def camera(index: int) -> None:
        rng = random.Random(f"{settings.seed}-camera-{index}")
        camera_id = f"cam-{index + 1:02d}"
        for n in range(per_camera[index]):
            key = frame_key(stack.names.frames_prefix, camera_id, base + timedelta(milliseconds=n))
            body, kind = pool[rng.randrange(len(pool))], "frame"
            if rng.random() < settings.bad_rate:
                kind = BAD_KINDS[rng.randrange(len(BAD_KINDS))]
                body = bad_object(kind, body, oversized_bytes=settings.max_bytes + 50_000)
            response = s3.put_object(Bucket=stack.names.bucket, Key=key, Body=body)
            tally = Counter({"uploads": 1, "versions": 1, kind: 1})
            if rng.random() < settings.duplicate_rate:
                event_time = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
                etag = response["ETag"].strip('"')
                sqs.send_message(
                    QueueUrl=stack.queue_url,
                    MessageBody=s3_notification_body(
                        stack, key, size=len(body), etag=etag, event_time=event_time
                    ),
                )
                tally["duplicate_notifications"] += 1
            if rng.random() < settings.overwrite_rate:
                other = pool[(pool.index(body) + 7) % len(pool)] if body in pool else pool[0]
                s3.put_object(Bucket=stack.names.bucket, Key=key, Body=other)
                tally.update({"overwrites": 1, "versions": 1})
            with lock:
                counts.update(tally)

    with ThreadPoolExecutor(max_workers=settings.cameras, thread_name_prefix="camera") as executor:
        list(executor.map(camera, range(settings.cameras)))
    return counts
