"""The handler at an added network latency: is the S3/DynamoDB wait hidden behind compute?

For one model and each (added latency, batch size) cell, in this process:

* the frames are uploaded under fresh keys (straight to moto) and wrapped into SQS events of
  the deployed shape (first deliveries, ``ApproximateReceiveCount`` 1);
* the function's app is built from the deployment's settings (the caller's: the same tables,
  camera state, review and event bus as the deployed function, so that the handler timed here
  is the one `make bench`'s first table times) on clients whose endpoint is the faults proxy
  (``infra.local.faults``) with ``latency_s`` added to every AWS call, and
  ``functions.handler.lambda_handler`` runs every event; wall time per invocation is measured;
* the same frames' compute alone (``load_image`` for each frame, one ``predict`` per batch, same
  model session, same threads) gives compute per frame, so the ratio wall / compute says
  how much of the network is still visible.

Every frame must end as an ``ok`` result (checked from the table), or the cell is an error.
One extra cell, ``lookup``, prices a redelivery (``ApproximateReceiveCount`` 2 on fresh frames):
the duplicate look-up (one BatchGetItem per batch) and the redelivered frames' decodes, one at a
time behind a mark (an UpdateItem and a DeleteItem per frame; docs/hardening.md).
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

import numpy as np

from bench import stats

if TYPE_CHECKING:
    from functions.settings import Settings

LATENCIES_S = (0.0, 0.020)
BATCH_SIZES = (1, 10)


@dataclass(frozen=True)
class Cell:
    latency_s: float
    batch_size: int
    receive_count: int = 1

    @property
    def name(self) -> str:
        lookup = "-lookup" if self.receive_count > 1 else ""
        return f"{round(self.latency_s * 1000)}ms-batch{self.batch_size}{lookup}"


def default_cells() -> list[Cell]:
    cells = [Cell(latency, batch) for latency in LATENCIES_S for batch in BATCH_SIZES]
    return [*cells, Cell(max(LATENCIES_S), max(BATCH_SIZES), receive_count=2)]


def s3_sqs_events(
    bucket: str,
    uploads: list[tuple[str, str, int]],
    batch_size: int,
    receive_count: int = 1,
    region: str = "us-east-1",
) -> list[dict[str, Any]]:
    """Lambda SQS events (``batch_size`` messages each) carrying one S3 ObjectCreated record per
    (key, etag, size), as S3 -> SQS delivers them. Sequencers increase with the upload order."""
    records = []
    for index, (key, etag, size) in enumerate(uploads):
        body = {
            "Records": [
                {
                    "eventVersion": "2.1",
                    "eventSource": "aws:s3",
                    "awsRegion": region,
                    "eventTime": "2026-12-01T00:00:00.000Z",
                    "eventName": "ObjectCreated:Put",
                    "s3": {
                        "s3SchemaVersion": "1.0",
                        "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                        "object": {
                            "key": quote_plus(key, safe="/"),
                            "size": size,
                            "eTag": etag,
                            "sequencer": f"{index + 1:018X}",
                        },
                    },
                }
            ]
        }
        records.append(
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": "bench",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": str(receive_count)},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{region}:000000000000:bench",
                "awsRegion": region,
            }
        )
    return [{"Records": records[i : i + batch_size]} for i in range(0, len(records), batch_size)]


def upload_frames(s3, bucket: str, prefix: str, frames: list[bytes]) -> list[tuple[str, str, int]]:
    uploads = []
    for index, data in enumerate(frames):
        key = f"{prefix}frame-{index:05d}.jpg"
        etag = s3.put_object(Bucket=bucket, Key=key, Body=data, ContentType="image/jpeg")["ETag"].strip('"')
        uploads.append((key, etag, len(data)))
    return uploads


def compute_seconds(model, frames: list[bytes], batch_size: int) -> list[float]:
    """Per batch: decode of each frame + one predict, sequential, in this thread (no network)."""
    from functions.frames.image_loader import load_image

    seconds = []
    for start in range(0, len(frames), batch_size):
        began = time.perf_counter()
        pixels = np.stack([load_image(data, source="bench") for data in frames[start : start + batch_size]])
        model.predict(pixels)
        seconds.append(time.perf_counter() - began)
    return seconds


def deployed_settings(stack, model_sha256: str) -> Settings:
    """The function's settings as the local system deploys it on ``stack`` (the model injected,
    pinned to its own sha256, as the deployment pins the one it runs)."""
    from functions import env
    from functions.settings import load_settings
    from infra.local.function_env import stack_settings

    return load_settings(
        {
            env.MODEL_URI: "bench: model injected",
            env.MODEL_SHA256: model_sha256,
            **stack_settings(stack.names),
        }
    )


def run_cells(
    endpoint_url: str,
    bucket: str,
    settings: Settings,
    model,
    frames: list[bytes],
    *,
    cells: list[Cell] | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Measure every cell for ``model`` (an open ``ModelSession``) under ``settings``; figures per cell name.

    ``settings``: the function's, as deployed (infra/local/function_env.py's environment read by
    ``load_settings``): a lighter handler (no camera state, no review) would time something
    the deployment does not run.
    """
    import boto3

    from functions.observability import logger
    from functions.stores.results import ResultsTable
    from infra.local.faults import FaultInjectingProxy

    cells = cells or default_cells()
    session = boto3.session.Session()
    direct_s3 = session.client("s3", endpoint_url=endpoint_url)
    table, frames_prefix = settings.results_table, settings.frames_prefix
    level = logger.log_level
    # One INFO line per frame would be timed too; and each cell's "camera" uploads unrelated
    # frames, so its health warnings ("moved") are expected and only cluttered the screen.
    logger.setLevel("ERROR")
    results: dict[str, dict[str, Any]] = {}
    try:
        for number, cell in enumerate(cells):
            if on_progress:
                on_progress(f"{cell.name}: uploading", number, len(cells))
            camera = f"latency-{cell.name}-{uuid.uuid4().hex[:6]}"
            uploads = upload_frames(direct_s3, bucket, f"{frames_prefix}{camera}/", frames)
            invocations = s3_sqs_events(bucket, uploads, cell.batch_size, cell.receive_count)
            with FaultInjectingProxy(endpoint_url, latency_s=cell.latency_s) as proxy:
                if on_progress:
                    on_progress(f"{cell.name}: handler", number, len(cells))
                wall = _invoke_through(proxy.endpoint_url, session, settings, model, invocations, cell.name)
                calls = proxy.stats.forwarded
            items = ResultsTable(table, session.client("dynamodb", endpoint_url=endpoint_url)).query_camera(
                camera
            )
            if len(items) != len(frames) or any(item.get("status") != "ok" for item in items):
                raise RuntimeError(f"{cell.name}: {len(items)} results for {len(frames)} frames, not all ok")
            if on_progress:
                on_progress(f"{cell.name}: compute alone", number, len(cells))
            compute = compute_seconds(model, frames, cell.batch_size)
            results[cell.name] = summarize_cell(cell, wall, compute, len(frames), calls)
    finally:
        logger.setLevel(level)
    if on_progress:
        on_progress("done", len(cells), len(cells))
    return results


def _invoke_through(
    endpoint_url: str, session: Any, settings: Settings, model: Any, invocations: list[dict], name: str
) -> list[float]:
    """Wall seconds of each invocation of the real handler, its clients pointed at ``endpoint_url``."""
    from functions import wiring
    from functions.handler import lambda_handler
    from functions.observability import LocalLambdaContext

    # The function's own client config (timeouts, retries, connection pool).
    s3, dynamodb, events = (
        session.client(service, endpoint_url=endpoint_url, config=wiring.CLIENT_CONFIG)
        for service in ("s3", "dynamodb", "events")
    )
    app = wiring.build_app(
        settings, s3_client=s3, dynamodb_client=dynamodb, model=model, events_client=events
    )
    context = LocalLambdaContext(function_name="camsort-bench-latency")
    previous = wiring.install_app(app)
    wall = []
    try:
        for event in invocations:
            began = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):  # EMF metrics
                response = lambda_handler(event, context)
            wall.append(time.perf_counter() - began)
            if response.get("batchItemFailures"):
                raise RuntimeError(f"{name}: failed messages {response['batchItemFailures']}")
    finally:
        wiring.install_app(previous)
    return wall


def summarize_cell(
    cell: Cell, wall_s: list[float], compute_s: list[float], frames: int, aws_calls: int
) -> dict[str, Any]:
    """Per-frame wall vs per-frame compute of one cell (pure)."""
    wall_per_frame = sum(wall_s) / frames
    compute_per_frame = sum(compute_s) / frames
    return {
        "latency_ms": round(cell.latency_s * 1000.0, 1),
        "batch_size": cell.batch_size,
        "receive_count": cell.receive_count,
        "frames": frames,
        "invocation": stats.summarize_ms(wall_s),
        "wall_per_frame_ms": round(wall_per_frame * 1000.0, 2),
        "compute_per_frame_ms": round(compute_per_frame * 1000.0, 2),
        "wall_over_compute": stats.ratio(wall_per_frame, compute_per_frame),
        "aws_calls_per_frame": round(aws_calls / frames, 2),
    }
