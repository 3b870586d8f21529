"""Requests per frame, measured: frames through the whole local system behind a counting proxy.

The default configuration (serverless.yml's parameters: batch 10, tags off, camera state and
health, events, review) runs on moto: cameras upload ``scenes`` (labels that persist, so camera
state changes as on a real road) of their own fixed ``views``, the local event source mapping (infra/local/worker.py) hands
batches to the real handler, and every request the function and the event source make goes
through infra/local/faults.py's proxy, which counts them by operation and scope.

What the proxy cannot see is counted from what it can: S3's own SendMessage per ObjectCreated
event (inside moto, not over HTTP) is the number of frame notifications the queue delivered.
Left out, and said so: the model's download at cold start (per container, not per frame),
the local worker's GetQueueAttributes (it asks whether the queue is drained; Lambda's poller
does not) and the poller's empty receives (per queue and time, not per frame).

The counts go to bench/perf.json (``requests``) and are priced by bench/perf/pricing.py.
"""

from __future__ import annotations

import dataclasses
import io
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from functions import env
from functions.frames.manifest import read_manifest

# Operations billed per invocation (one SQS batch), not per frame: priced at the batch size.
PER_INVOCATION = frozenset({"sqs:ReceiveMessage", "sqs:DeleteMessageBatch"})
# The state table holds the camera state items and the event items: their writes are priced apart.
EVENT_ITEMS = "event items"
# The local stand-ins' own calls that Lambda does not make (see the module docstring).
NOT_BILLED_PER_FRAME = frozenset({"sqs:GetQueueAttributes"})


def measure_requests(
    endpoint_url: str,
    model_dir: Path,
    work_dir: Path,
    *,
    cameras: int = 2,
    frames_per_camera: int = 20,
    batch_size: int = 10,
    seed: int = 0,
    extra_environment: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run the frames through the local system on ``endpoint_url``; requests per frame and per invocation."""
    from infra.demo.accounting import notification_objects
    from infra.demo.simulator import simulate_cameras
    from infra.deploy.topology import StackNames
    from infra.local.faults import FaultInjectingProxy
    from infra.local.function_env import function_environment
    from infra.local.stack import create_local_stack, upload_model
    from infra.local.worker import SqsWorker

    stack = create_local_stack(
        endpoint_url, StackNames.for_stage(f"bill-{uuid.uuid4().hex[:8]}"), function_timeout_s=60
    )
    model_uri = upload_model(stack, model_dir, version=read_manifest(model_dir).model_sha256[:12])
    # Fixed camera views (each camera its own street): what a deployment sees, so camera health
    # holds `ok` and its events are as rare as on a real road.
    manifest = simulate_cameras(
        stack, cameras=cameras, frames_per_camera=frames_per_camera, scenes=True, views=True, seed=seed
    )
    notified: set[str] = set()
    log = io.StringIO()
    with FaultInjectingProxy(stack.endpoint_url) as proxy:
        last: list[Any] = [proxy.requests.snapshot()]

        def observe(records: list[dict[str, Any]], failed: set[str]) -> None:
            notified.update(r["messageId"] for r in records if notification_objects(r["body"]))
            last[0] = proxy.requests.snapshot()  # after the invocation's deletes: no idle polls

        environment = function_environment(
            stack,
            model_uri,
            endpoint_url=proxy.endpoint_url,
            extra={
                env.MODEL_CACHE_DIR: str(work_dir / "function-model-cache"),
                env.ONNX_THREADS: "1",
                **(extra_environment or {}),
            },
        )
        # The event source mapping's own SQS calls go through the proxy too.
        via_proxy = dataclasses.replace(stack, endpoint_url=proxy.endpoint_url)
        worker = SqsWorker(
            via_proxy, environment, batch_size=batch_size, observer=observe, function_output=log
        )
        stats = worker.run_until_drained(idle_s=1.0, max_duration_s=600)
    counted = last[0]
    item_bytes = _written_item_bytes(stack, counted.dynamodb_writes)
    model = read_manifest(model_dir)
    return {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": {"version": model.model_version, "precision": model.precision},
    } | summarize(
        counted.requests,
        counted.event_entries,
        item_bytes,
        frames=len(manifest.objects),
        invocations=stats.invocations,
        notifications=len(notified),
        log_bytes=len(log.getvalue().encode()),
        outcomes=_outcomes(stack),
        tables=_tables(stack),
    )


def summarize(
    requests: Counter[tuple[str, str]],
    event_entries: Counter[str],
    item_bytes: list[tuple[str, str, int, bool]],
    *,
    frames: int,
    invocations: int,
    notifications: int,
    log_bytes: int,
    outcomes: dict[str, int],
    tables: dict[str, str],
) -> dict[str, Any]:
    """Per-frame (and per-invocation) counts from a run's raw counts; pure, so it is unit-tested.

    ``item_bytes``: (table, operation, bytes, in the by_camera index) per DynamoDB item written; ``tables``: table name
    -> its role (results, state, review) so that the output does not carry the stack's names.
    """
    if frames <= 0 or invocations <= 0:
        raise ValueError("a run with no frames or no invocations has nothing to count")
    per_frame: Counter[str] = Counter()
    per_invocation: Counter[str] = Counter()
    left_out: Counter[str] = Counter()
    for (operation, scope), count in requests.items():
        name = f"{operation} {tables.get(scope, scope)}".strip()
        if operation in NOT_BILLED_PER_FRAME or tables.get(scope) == "models":  # the model: per container
            left_out[name] += count
        elif operation in PER_INVOCATION:
            per_invocation[name] += count
        else:
            per_frame[name] += count
    per_frame["sqs:SendMessage (S3 notification)"] += notifications
    for bus, entries in event_entries.items():
        per_frame[f"events:PutEvents entries {tables.get(bus, bus)}"] += entries
    from bench.perf.pricing import write_units

    writes: dict[str, list[int]] = {}
    for table, operation, size, indexed in item_bytes:
        role = tables.get(table, table)
        writes.setdefault(f"dynamodb:{operation} {role}", []).append(size)
        if indexed:  # the by_camera index (projection ALL) writes the item a second time
            writes.setdefault(f"dynamodb:{operation} {role} by_camera index copy", []).append(size)
    return {
        "frames": frames,
        "invocations": invocations,
        "batch_size_measured": round(frames / invocations, 2),
        "per_frame": {name: round(count / frames, 4) for name, count in sorted(per_frame.items())},
        "per_invocation": {
            name: round(count / invocations, 4) for name, count in sorted(per_invocation.items())
        },
        "left_out": dict(sorted(left_out.items())),
        "dynamodb_items": {
            name: {
                "writes_per_frame": round(len(sizes) / frames, 4),
                "mean_bytes": round(sum(sizes) / len(sizes)),
                "write_units_per_frame": round(sum(write_units(size) for size in sizes) / frames, 4),
            }
            for name, sizes in sorted(writes.items())
        },
        "log_bytes_per_frame": round(log_bytes / frames),
        "outcomes": outcomes,
    }


def _written_item_bytes(stack, writes) -> list[tuple[str, str, int, bool]]:
    """(table, operation, item bytes, indexed) per write; an UpdateItem's item is read back (its size after)."""
    from bench.perf.pricing import dynamodb_item_bytes
    from functions.state.camera_state import EVENT_PREFIX
    from functions.state.state_item import SORT_KEY
    from infra.deploy.topology import CAMERA_INDEX_PARTITION_KEY, CAMERA_INDEX_SORT_KEY

    dynamodb = stack.client("dynamodb")
    sized = []
    for write in writes:
        item = write.item
        if item is None and write.key:
            item = dynamodb.get_item(TableName=write.table, Key=write.key).get("Item", write.key)
        item = item or {}
        indexed = write.table == stack.names.table and {
            CAMERA_INDEX_PARTITION_KEY,
            CAMERA_INDEX_SORT_KEY,
        } <= set(item)
        table = write.table
        if table == stack.names.state_table and item.get(SORT_KEY, {}).get("S", "").startswith(EVENT_PREFIX):
            table = (
                f"{table} {EVENT_ITEMS}"  # the state table's event items, priced apart from the state items
            )
        sized.append((table, write.operation, dynamodb_item_bytes(item), indexed))
    return sized


def _tables(stack) -> dict[str, str]:
    names = stack.names
    return {names.table: "results", names.state_table: "state", names.review_table: "review",
            f"{names.state_table} {EVENT_ITEMS}": f"state {EVENT_ITEMS}",
            names.event_bus: "bus", names.queue: "queue", names.frames_prefix.strip("/"): "frames",
            names.models_prefix.strip("/"): "models"}  # fmt: skip


def _outcomes(stack) -> dict[str, int]:
    """The run's mix (the counts depend on it): results by status / label, state items, review entries."""
    from infra.demo.accounting import scan_results

    items = scan_results(stack)
    mix = Counter(f"{i['status']}:{i.get('label', i.get('reason', ''))}" for i in items)
    return dict(sorted(mix.items()))
