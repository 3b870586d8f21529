"""Upload-to-result latency: a camera's PutObject until the result item is readable.

Measured through the whole local system (:func:`measure_upload_to_result`): the frames are put
into the bucket, moto's S3 notification puts a message on the queue, the local event source
mapping (infra/local/worker.py) gathers batches as Lambda's does (``batchSize``,
``maximumBatchingWindow``) and calls the real handler under the function's settings, and a
reader polls the results table (consistent GetItem of each pending frame every ``poll_s``)
until each frame's item is there. Two loads: a ``steady`` upload rate and a ``burst`` (all
frames at once). What the local figure leaves out is what moto does not have: S3's own
notification delay and Lambda's invocation overhead, which :func:`aws_model` adds from their
sources.

:func:`aws_model` is the same latency on AWS, from its parts (all in seconds):

* S3 -> SQS delivery: "typically ... in seconds" (Amazon S3 User Guide, "Amazon S3 Event
  Notifications": https://docs.aws.amazon.com/AmazonS3/latest/userguide/EventNotifications.html).
  No tighter figure is published; ``S3_DELIVERY_S`` plans with 1 s;
* the SQS batching window: Lambda invokes when ``batchSize`` records are gathered, the window
  ``maximumBatchingWindow`` has passed since the first one, or the payload reaches 6 MB
  (AWS Lambda Developer Guide, "Using Lambda with Amazon SQS", batching behavior:
  https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html). At ``rate`` frames
  per second a batch fills in ``batchSize / rate`` s, so it closes after
  ``min(window, batchSize / rate)``; its first frame waited that long, its last not at all;
* the invocation: a warm invoke's overhead is not published; ``INVOKE_S`` plans with 0.02 s
  (the order of a Lambda service round trip); a cold start adds the init this bench measures
  (perf.json ``cold_start``);
* the function: the invocation time this bench measured at that batch size (perf.json
  ``latency``, 20 ms added per AWS call).
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import stats

S3_DELIVERY_S = 1.0  # planning figure: S3 documents "typically seconds", nothing tighter
INVOKE_S = 0.02  # planning figure: a warm invocation's service overhead (unpublished)
READ_TIMEOUT_S = 120  # a frame whose result is not readable by then fails the measurement


@dataclass(frozen=True)
class Load:
    name: str
    frames: int
    frames_per_second: float | None  # None: a burst, every frame at once


def aws_model(
    rate_fps: float, batch_size: int, window_s: float, invocation_s: Callable[[int], float]
) -> dict[str, float]:
    """Upload-to-result seconds on AWS at ``rate_fps`` (all cameras together), from the parts.

    ``invocation_s(n)``: the function's time for a batch of ``n`` frames (measured). Returns the
    batch the rate fills, the first and last frame's wait in the window, and the latency of the
    first frame of a batch (the worst), the last (the best) and their mean.
    """
    if rate_fps <= 0 or batch_size < 1 or window_s < 0:
        raise ValueError("rate_fps and batch_size must be positive, window_s not negative")
    fill_s = batch_size / rate_fps
    wait_s = min(window_s, fill_s)
    # No window: one frame per invocation, the lower bound (at high rates the poller takes
    # whatever has queued meanwhile, which depends on its polling, not published).
    batch = max(1, min(batch_size, math.floor(rate_fps * wait_s) + 1))
    fixed = S3_DELIVERY_S + INVOKE_S + invocation_s(batch)
    return {
        "rate_fps": rate_fps,
        "batch_size": batch_size,
        "window_s": window_s,
        "frames_per_invocation": batch,
        "best_s": round(fixed, 3),
        "mean_s": round(fixed + wait_s / 2.0, 3),
        "worst_s": round(fixed + wait_s, 3),
    }


def measured_invocation_s(latency_cells: dict[str, Any]) -> Callable[[int], float]:
    """The function's time for ``n`` frames, interpolated between the measured batch-1 and -10 cells."""
    one = latency_cells["20ms-batch1"]["invocation"]["mean_ms"] / 1000.0
    ten = latency_cells["20ms-batch10"]["invocation"]["mean_ms"] / 1000.0
    return lambda n: one + (ten - one) * (min(n, 10) - 1) / 9.0


def measure_upload_to_result(
    endpoint_url: str,
    model_dir: Path,
    work_dir: Path,
    *,
    loads: tuple[Load, ...] = (Load("steady", 30, 2.0), Load("burst", 30, None)),
    batch_size: int = 10,
    window_s: float = 2.0,
    poll_s: float = 0.02,
    seed: int = 0,
) -> dict[str, Any]:
    """p50 / p95 / max of PutObject -> result readable, per load, through the whole local system."""
    from functions import env
    from functions.frames.manifest import read_manifest
    from infra.deploy.topology import StackNames
    from infra.local.function_env import function_environment
    from infra.local.stack import create_local_stack, upload_model
    from infra.local.worker import SqsWorker

    stack = create_local_stack(
        endpoint_url, StackNames.for_stage(f"latency-{uuid.uuid4().hex[:8]}"), function_timeout_s=60
    )
    model_uri = upload_model(stack, model_dir, version=read_manifest(model_dir).model_sha256[:12])
    environment = function_environment(
        stack,
        model_uri,
        extra={env.MODEL_CACHE_DIR: str(work_dir / "function-model-cache"), env.ONNX_THREADS: "1"},
    )
    worker = SqsWorker(
        stack, environment, batch_size=batch_size, batching_window_s=window_s, function_output=_Discard()
    )
    out: dict[str, Any] = {"batch_size": batch_size, "window_s": window_s, "poll_s": poll_s, "loads": {}}
    with worker:
        _warm_up(stack, worker, seed)
        for load in loads:
            seconds = _run_load(stack, load, poll_s, seed)
            out["loads"][load.name] = {
                "frames": load.frames,
                "frames_per_second": load.frames_per_second,
                **latency_summary(seconds),
            }
    return out


def latency_summary(seconds: list[float]) -> dict[str, float]:
    """p50, p95 and max in ms of upload-to-result seconds."""
    summary = stats.summarize_ms(seconds)
    return {
        "p50_ms": summary["p50_ms"],
        "p95_ms": summary["p95_ms"],
        "max_ms": round(max(seconds) * 1000.0, 3),
    }


def _warm_up(stack, worker, seed: int) -> None:
    """One frame first, so the measured loads see a warm container (the cold start is its own figure)."""
    _run_load(stack, Load("warm-up", 1, None), 0.05, seed)
    if worker.failed:
        worker.stop()  # raises the worker's own error


def _run_load(stack, load: Load, poll_s: float, seed: int) -> list[float]:
    from infra.deploy.topology import TABLE_PARTITION_KEY
    from training.data.synthetic import LABELS, frame_jpeg

    s3, camera = stack.client("s3"), f"{load.name}-{uuid.uuid4().hex[:6]}"
    bodies = [
        frame_jpeg(LABELS[i % len(LABELS)], seed + i, width=640, height=360) for i in range(load.frames)
    ]
    dynamodb = stack.client("dynamodb")

    def readable(object_id: str) -> bool:
        """Any result of this object, read as a client would (consistent; S3 events carry the
        version id or only the ETag, so the partition is asked, not one sort key)."""
        return bool(
            dynamodb.query(
                TableName=stack.names.table,
                KeyConditionExpression="#id = :id",
                ExpressionAttributeNames={"#id": TABLE_PARTITION_KEY},
                ExpressionAttributeValues={":id": {"S": object_id}},
                ConsistentRead=True,
                Limit=1,
            )["Items"]
        )

    pending: dict[str, float] = {}
    done: list[float] = []
    lock = threading.Lock()
    uploaded = threading.Event()

    def read_results() -> None:
        deadline = time.monotonic() + READ_TIMEOUT_S
        while time.monotonic() < deadline:
            with lock:
                waiting = list(pending.items())
            for object_id, put_at in waiting:
                if readable(object_id):
                    seen = time.monotonic()
                    with lock:
                        pending.pop(object_id)
                        done.append(seen - put_at)
            if uploaded.is_set() and not waiting:
                return
            time.sleep(poll_s)

    reader = threading.Thread(target=read_results, name="result-reader", daemon=True)
    reader.start()
    started = time.monotonic()
    for index, body in enumerate(bodies):
        if load.frames_per_second:
            time.sleep(max(0.0, started + index / load.frames_per_second - time.monotonic()))
        key = f"{stack.names.frames_prefix}{camera}/{index:05d}.jpg"
        put_at = time.monotonic()
        s3.put_object(Bucket=stack.names.bucket, Key=key, Body=body, ContentType="image/jpeg")
        with lock:
            pending[f"{stack.names.bucket}/{key}"] = put_at
    uploaded.set()
    reader.join()
    if len(done) != load.frames:
        raise RuntimeError(
            f"{load.name}: {len(done)} of {load.frames} results became readable within {READ_TIMEOUT_S} s"
        )
    return done


class _Discard:
    """The function's log output, dropped (the figure here is time, not logs)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
