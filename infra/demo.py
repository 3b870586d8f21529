"""`camsort demo` and `camsort results`: the whole system on this machine, then its answers.

``run_demo`` (what ``make demo`` runs):

1. a model: ``--model DIR``, or the cached demo model, or one trained now from synthetic
   frames (``--weights none`` by default: the ResNet50 backbone is randomly initialised
   because ImageNet weights cannot be downloaded offline; the screen says so);
2. a moto server on 127.0.0.1 (or ``--endpoint-url``), the deployed topology on it
   (:mod:`infra.local_stack`), the model uploaded under ``models/``;
3. the worker in a thread, calling the very same Lambda handler (:mod:`infra.worker`);
4. the camera simulator (:mod:`infra.simulator`): cameras x frames, a few bad objects and one
   duplicated notification, with a live view;
5. an honest account (:func:`account`): every uploaded object must end with exactly one result
   or one dead-letter entry; ``lost`` counts those with neither, and the exit code says so;
6. a results query for one camera, through the same function as ``camsort results``.

``--keep-running`` leaves the moto server up and writes a state file (endpoint, table) under
the cache dir; ``camsort results`` reads it when no ``--endpoint-url`` / ``--table`` is given,
and ``camsort demo --stop`` stops that server.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import numpy as np
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from functions import env
from functions.errors import ConfigurationError
from functions.manifest import MANIFEST_FILENAME, MODEL_FILENAME, UNKNOWN_LABEL, load_verified, read_manifest
from infra.local_stack import DEFAULT_REGION, LocalStack, create_local_stack, local_client, upload_model
from infra.moto_server import MotoServer
from infra.simulator import SimulationManifest, UploadedObject, simulate_cameras
from infra.topology import MAX_RECEIVE_COUNT, StackNames
from infra.worker import SqsWorker, WorkerStats, function_environment
from training import synthetic

# Bumped when the demo's training recipe changes, so an old cached model is not reused.
DEMO_RECIPE_VERSION = 1
STATE_FILENAME = "state.json"


def default_cache_dir() -> Path:
    return Path(os.environ.get(env.CACHE_DIR) or Path.home() / ".cache" / "camsort")


@dataclass(frozen=True)
class DemoSettings:
    cameras: int = 4
    frames_per_camera: int = 50
    frames_per_second: float = 2.0  # per camera; 0: as fast as possible
    bad_objects: bool = True
    duplicate_notification: bool = True
    # The demo model: used as is when given, else cached / trained from synthetic frames.
    model_dir: Path | None = None
    weights: str = "none"
    train_per_label: int = 30
    folds: int = 3
    precision: str = "auto"
    seed: int = 0
    # The function's configuration: serverless.yml's defaults (timeout 60 s, so a visibility
    # timeout of 360 s; batches of 10 gathered for up to 2 s), except a byte limit small
    # enough that the simulator's oversized object stays a few MB.
    max_bytes: int = 2_000_000
    function_timeout_s: int = 60
    batch_size: int = 10
    batching_window_s: float = 2.0
    # Infrastructure.
    endpoint_url: str | None = None  # an already-running moto server; default: start one
    stage: str = "local"
    keep_running: bool = False
    cache_dir: Path = field(default_factory=default_cache_dir)
    results_camera: str = "cam-01"
    results_limit: int = 10

    @property
    def demo_dir(self) -> Path:
        return Path(self.cache_dir) / "demo"


# --- the demo model ---------------------------------------------------------------------------


def demo_model_key(settings: DemoSettings) -> str:
    """Hash of everything that decides the demo model; a change trains a new one."""
    recipe = {
        "recipe": DEMO_RECIPE_VERSION,
        "weights": settings.weights,
        "per_label": settings.train_per_label,
        "folds": settings.folds,
        "precision": settings.precision,
        "seed": settings.seed,
        # The frames themselves: a change to the generator must not reuse a model trained on old ones.
        "synthetic_source": hashlib.sha256(Path(synthetic.__file__).read_bytes()).hexdigest(),
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def ensure_demo_model(settings: DemoSettings, console: Console) -> Path:
    """The cached demo model for these settings, trained from synthetic frames if missing."""
    key = demo_model_key(settings)
    model_dir = Path(settings.cache_dir) / "demo-model" / key
    if (model_dir / MODEL_FILENAME).is_file() and (model_dir / MANIFEST_FILENAME).is_file():
        load_verified(model_dir)  # a damaged cache fails loudly instead of serving a wrong model
        console.print(f"[green]Using the cached demo model[/] {model_dir}")
        return model_dir

    # Training needs TensorFlow, LightGBM, ...: imported only when a model must be trained.
    from training.pipeline import train
    from training.synthetic import write_dataset

    data_dir = Path(settings.cache_dir) / "demo-data" / key
    console.print(
        Panel.fit(
            f"No cached demo model: training one now from {settings.train_per_label} synthetic frames per label "
            f"(weights={settings.weights}, {settings.folds}-fold cross-validation). This happens once; "
            f"the model is cached in {model_dir}.",
            title="camsort demo: training",
        )
    )
    write_dataset(data_dir, settings.train_per_label, seed=settings.seed)
    staging = model_dir.with_name(f".{key}.partial")
    shutil.rmtree(staging, ignore_errors=True)  # left over by an interrupted run
    staging.parent.mkdir(parents=True, exist_ok=True)
    trained = train(
        str(data_dir),
        staging,
        weights=settings.weights,
        folds=settings.folds,
        seed=settings.seed,
        precision=settings.precision,
        cache_dir=Path(settings.cache_dir),
        progress=True,
        console=console,
    )
    # Atomic publish: a half-trained directory never looks like a cached model.
    shutil.rmtree(model_dir, ignore_errors=True)  # an incomplete one (no manifest) from an older run
    Path(trained).rename(model_dir)
    return model_dir


def explain_weights(weights: str) -> str | None:
    if weights == "none":
        return (
            "The ResNet50 backbone of this model is RANDOMLY INITIALISED (seeded, weights=none): ImageNet "
            "weights cannot be downloaded on this machine. The labels below are only as good as that. "
            "On a machine with the weights: camsort demo --weights imagenet (or a local .h5 path)."
        )
    return None


# --- delivery tracking and the final account --------------------------------------------------


def notification_objects(body: str) -> list[tuple[str, str | None]]:
    """(key, etag) of each ObjectCreated record in an S3 notification body; [] for anything else."""
    try:
        payload = json.loads(body)
        records = payload.get("Records", []) if isinstance(payload, dict) else []
        return [
            (unquote_plus(record["s3"]["object"]["key"]), record["s3"]["object"].get("eTag"))
            for record in records
            if str(record.get("eventName", "")).startswith("ObjectCreated:")
        ]
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
        return []


class DeliveryTracker:
    """The worker's observer: deliveries per message, acknowledged deliveries per object."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.acknowledged: Counter[tuple[str, str | None]] = Counter()
        self.deliveries: Counter[str] = Counter()  # messageId -> times delivered

    def observe(self, records: list[dict[str, Any]], failed_ids: set[str]) -> None:
        with self._lock:
            for record in records:
                self.deliveries[record["messageId"]] += 1
                if record["messageId"] not in failed_ids:
                    self.acknowledged.update(notification_objects(record["body"]))

    def snapshot(self) -> Counter[tuple[str, str | None]]:
        with self._lock:
            return Counter(self.acknowledged)

    @property
    def redeliveries(self) -> int:
        """Deliveries of a message after its first (it failed, or its batch did)."""
        with self._lock:
            return sum(count - 1 for count in self.deliveries.values())


def emf_metric_total(log_path: Path, name: str, *, offset: int = 0) -> float:
    """Sum of metric ``name`` in the CloudWatch EMF lines of a function log, from byte ``offset``.

    The function reports its own counts (e.g. ``Duplicates``) as EMF on stdout, which the
    worker writes to the demo's function log, as Lambda hands it to CloudWatch.
    """
    total = 0.0
    with open(log_path, "rb") as handle:
        handle.seek(offset)
        for line in handle:
            if b'"_aws"' not in line:
                continue
            try:
                blob = json.loads(line)
            except json.JSONDecodeError:
                continue
            value = blob.get(name)
            if isinstance(value, list):
                total += sum(float(v) for v in value)
            elif isinstance(value, int | float):
                total += float(value)
    return total


@dataclass
class Account:
    uploaded: int = 0
    results: int = 0
    ok: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    # Keys whose result differs from what the simulator uploaded (a frame rejected, a bad file accepted...).
    unexpected: list[str] = field(default_factory=list)
    dead_lettered: list[str] = field(default_factory=list)
    dlq_messages: int = 0
    lost: list[str] = field(default_factory=list)
    extra_results: list[str] = field(default_factory=list)  # more than one result for one object
    # Objects announced by more than one acknowledged message (beyond the first).
    duplicate_notifications: int = 0
    function_latency_ms: list[float] = field(default_factory=list)
    end_to_end_ms: list[float] = field(default_factory=list)
    label_agreement: tuple[int, int] = (0, 0)  # (frames whose label == the rendered label, ok frames)


def scan_results(stack: LocalStack) -> list[dict[str, Any]]:
    from functions.results import deserialize_item

    dynamodb = stack.client("dynamodb")
    items, params = [], {"TableName": stack.names.table, "ConsistentRead": True}
    while True:
        response = dynamodb.scan(**params)
        items.extend(deserialize_item(raw) for raw in response.get("Items", []))
        if "LastEvaluatedKey" not in response:
            return items
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def dead_letter_bodies(stack: LocalStack) -> list[str]:
    """Every message body in the DLQ, leaving the messages there and visible as they were."""
    sqs = stack.client("sqs")
    read: list[dict[str, Any]] = []
    # Hidden while reading so that each message is read once, then made visible again.
    while messages := sqs.receive_message(
        QueueUrl=stack.dead_letter_queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=0
    ).get("Messages", []):
        read.extend(messages)
    for start in range(0, len(read), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=stack.dead_letter_queue_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for i, m in enumerate(read[start : start + 10])
            ],
        )
    return [message["Body"] for message in read]


def uploaded_objects(stack: LocalStack) -> dict[tuple[str, str], datetime]:
    """(key, etag) -> LastModified of every object under the frames prefix: what S3 really holds."""
    s3 = stack.client("s3")
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=stack.names.bucket, Prefix=stack.names.frames_prefix
    ):
        for obj in page.get("Contents", []):
            found[(obj["Key"], obj["ETag"].strip('"'))] = obj["LastModified"]
    return found


def account(
    stack: LocalStack, manifest: SimulationManifest, acknowledged: Counter[tuple[str, str | None]]
) -> Account:
    """Every object under the frames prefix -> its result item or its DLQ entry; the rest is lost."""
    objects = uploaded_objects(stack)
    expected = {(obj.key, obj.etag): obj for obj in manifest.objects}
    identities = sorted(set(objects) | set(expected))
    items = scan_results(stack)
    by_identity: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    prefix = f"{stack.names.bucket}/"
    for item in items:
        key = item["object_id"][len(prefix) :] if item["object_id"].startswith(prefix) else item["object_id"]
        # By ETag, whatever the item's version key is (versionId on AWS; moto's events carry none).
        by_identity[(key, item.get("etag") or item["object_version"])].append(item)
    bodies = dead_letter_bodies(stack)
    dead = {obj for body in bodies for obj in notification_objects(body)}

    result = Account(uploaded=len(identities), dlq_messages=len(bodies))
    agree = 0
    for identity in identities:
        key, etag = identity
        found = by_identity.get(identity, [])
        if len(found) > 1:
            result.extra_results.append(key)
        if not found:
            if (key, etag) in dead or (key, None) in dead:
                result.dead_lettered.append(key)
            else:
                result.lost.append(key)
            continue
        item = found[0]
        result.results += 1
        simulated = expected.get(identity)
        if item.get("status") == "ok":
            result.ok += 1
            result.labels[item.get("label") or UNKNOWN_LABEL] += 1
            if simulated is not None and simulated.label == item.get("label"):
                agree += 1
        else:
            result.rejected[item.get("reason") or "unknown"] += 1
        if simulated is not None:
            wanted = (
                ("ok", None) if simulated.expected_reason is None else ("rejected", simulated.expected_reason)
            )
            if (item.get("status"), item.get("reason")) != wanted:
                result.unexpected.append(f"{key}: {item.get('status')} {item.get('reason') or ''}".strip())
            processed = _parse_time(item.get("processed_at"))
            if processed is not None:
                result.end_to_end_ms.append((processed.timestamp() - simulated.uploaded_at) * 1000.0)
        if item.get("latency_ms") is not None:
            result.function_latency_ms.append(float(item["latency_ms"]))
        # Each result was written by one delivery; every other acknowledged one was a duplicate.
        deliveries = acknowledged.get((key, etag), 0)
        result.duplicate_notifications += max(0, deliveries - 1)
    result.label_agreement = (agree, result.ok)
    return result


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else None


# --- live view -----------------------------------------------------------------------------------


@dataclass
class LiveState:
    uploaded: int = 0
    results: int = 0
    rejected: int = 0
    dead_letter: int = 0
    queue_visible: int = 0
    queue_in_flight: int = 0
    uploads_per_camera: Counter[str] = field(default_factory=Counter)
    results_per_camera: Counter[str] = field(default_factory=Counter)
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)  # camera -> newest result item
    simulator_done: bool = False


def poll_live_state(stack: LocalStack, state: LiveState) -> None:
    items = scan_results(stack)
    state.results = len(items)
    state.rejected = sum(1 for item in items if item.get("status") == "rejected")
    state.results_per_camera = Counter(item.get("camera_id") for item in items if item.get("camera_id"))
    latest: dict[str, dict[str, Any]] = {}
    for item in items:
        camera = item.get("camera_id")
        if camera and (
            camera not in latest or item.get("captured_at", "") > latest[camera].get("captured_at", "")
        ):
            latest[camera] = item
    state.latest = latest
    sqs = stack.client("sqs")
    queue = sqs.get_queue_attributes(
        QueueUrl=stack.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    state.queue_visible = int(queue["ApproximateNumberOfMessages"])
    state.queue_in_flight = int(queue["ApproximateNumberOfMessagesNotVisible"])
    dlq = sqs.get_queue_attributes(
        QueueUrl=stack.dead_letter_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    state.dead_letter = int(dlq["ApproximateNumberOfMessages"])


def render_live(state: LiveState, cameras: list[str]) -> Group:
    counters = Table.grid(padding=(0, 3))
    for _ in range(6):
        counters.add_column(justify="right")
    waiting = max(0, state.uploaded - state.results - state.dead_letter)
    counters.add_row(
        f"uploaded [bold]{state.uploaded}[/]",
        f"results [bold green]{state.results}[/]",
        f"rejected [bold yellow]{state.rejected}[/]",
        f"DLQ [bold red]{state.dead_letter}[/]",
        f"waiting [bold]{waiting}[/]",
        f"queue {state.queue_visible} visible / {state.queue_in_flight} in flight",
    )
    table = Table(title="cameras", expand=False)
    for column in ("camera", "uploaded", "results", "latest capture", "latest label", "confidence"):
        table.add_column(
            column, justify="right" if column in ("uploaded", "results", "confidence") else "left"
        )
    for camera in cameras:
        item = state.latest.get(camera, {})
        if item.get("status") == "rejected":
            label, confidence = f"[yellow]rejected: {item.get('reason')}[/]", ""
        else:
            label = item.get("label", "")
            confidence = f"{float(item['confidence']):.3f}" if item.get("confidence") is not None else ""
        table.add_row(
            camera,
            str(state.uploads_per_camera.get(camera, 0)),
            str(state.results_per_camera.get(camera, 0)),
            item.get("captured_at", ""),
            label,
            confidence,
        )
    status = "simulator finished; draining the queue" if state.simulator_done else "cameras uploading"
    return Group(counters, table, f"[dim]{status}[/]")


# --- the demo ------------------------------------------------------------------------------------


@dataclass
class DemoOutcome:
    account: Account
    worker: WorkerStats
    function_duplicates: int  # the function's own Duplicates metric (EMF) over the run
    redeliveries: int  # messages delivered again after a failed delivery
    function_timeout_s: int
    endpoint_url: str
    table: str
    started_at: datetime
    finished_at: datetime

    @property
    def exit_code(self) -> int:
        return 1 if self.account.lost else 0


def run_demo(settings: DemoSettings, console: Console | None = None) -> DemoOutcome:
    console = console or Console()
    settings.demo_dir.mkdir(parents=True, exist_ok=True)
    model_dir = Path(settings.model_dir) if settings.model_dir else ensure_demo_model(settings, console)
    load_verified(model_dir)
    manifest = read_manifest(model_dir)
    warning = explain_weights(manifest.weights)
    if warning:
        console.print(Panel(warning, title="about this model", border_style="yellow"))
    console.print(
        f"Model {model_dir} (labels {', '.join(manifest.labels)}; {manifest.precision}; "
        f"sha256 {manifest.model_sha256[:12]})"
    )

    server = None
    if settings.endpoint_url:
        endpoint_url = settings.endpoint_url
    else:
        server = MotoServer(log_path=settings.demo_dir / "moto.log").start()
        endpoint_url = server.endpoint_url
    keep_server = False
    try:
        outcome = _run_on_endpoint(settings, console, model_dir, endpoint_url)
        if settings.keep_running and server is not None:
            write_state(settings.demo_dir, endpoint_url, outcome.table, server.pid)
            keep_server = True
            console.print(
                f"The moto server keeps running at {endpoint_url} (pid {server.pid}). "
                "Query it with [bold]camsort results --camera cam-01 --last 10m[/]; "
                "stop it with [bold]camsort demo --stop[/]."
            )
        return outcome
    finally:
        if server is not None and not keep_server:
            server.stop()


def _run_on_endpoint(
    settings: DemoSettings, console: Console, model_dir: Path, endpoint_url: str
) -> DemoOutcome:
    names = StackNames.for_stage(settings.stage)
    stack = create_local_stack(endpoint_url, names, function_timeout_s=settings.function_timeout_s)
    manifest = read_manifest(model_dir)
    model_uri = upload_model(stack, model_dir, version=manifest.model_sha256[:12])
    environment = function_environment(
        stack,
        model_uri,
        extra={
            env.MAX_BYTES: str(settings.max_bytes),
            env.MODEL_CACHE_DIR: str(settings.demo_dir / "function-model-cache"),
        },
    )
    console.print(
        f"Local stack on {endpoint_url}: bucket {names.bucket}, queue {names.queue} (+DLQ, maxReceiveCount "
        f"{MAX_RECEIVE_COUNT}, visibility {stack.visibility_timeout_s}s), table {names.table}. "
        f"Function logs: {settings.demo_dir / 'function.log'}"
    )

    tracker = DeliveryTracker()
    state = LiveState()
    cameras = [f"cam-{index + 1:02d}" for index in range(settings.cameras)]
    started_at = datetime.now(UTC)
    log_path = settings.demo_dir / "function.log"
    log_offset = log_path.stat().st_size if log_path.exists() else 0  # this run's lines start here
    with open(log_path, "a") as function_log:
        worker = SqsWorker(
            stack,
            environment,
            batch_size=settings.batch_size,
            batching_window_s=settings.batching_window_s,
            observer=tracker.observe,
            function_output=function_log,
        )
        worker.start()
        simulation = _start_simulation(settings, stack, state)
        try:
            _watch(stack, state, simulation, cameras, console, worker_failed=lambda: worker.failed)
        finally:
            worker_stats = worker.stop()
    console.print()
    simulated = simulation.result()
    finished_at = datetime.now(UTC)
    outcome = DemoOutcome(
        account=account(stack, simulated, tracker.snapshot()),
        worker=worker_stats,
        function_duplicates=int(emf_metric_total(log_path, "Duplicates", offset=log_offset)),
        redeliveries=tracker.redeliveries,
        function_timeout_s=stack.function_timeout_s,
        endpoint_url=endpoint_url,
        table=names.table,
        started_at=started_at,
        finished_at=finished_at,
    )
    console.print(summary_table(outcome, simulated))
    if outcome.account.lost:
        console.print(
            f"[bold red]LOST {len(outcome.account.lost)} object(s):[/] " + ", ".join(outcome.account.lost)
        )
    console.print(
        f"\n[bold]camsort results --camera {settings.results_camera} --since {_iso(started_at)} "
        f"--until {_iso(finished_at)} --limit {settings.results_limit}[/]"
    )
    show_results(
        ResultsQuery(
            camera=settings.results_camera, since=started_at, until=finished_at, limit=settings.results_limit
        ),
        ResultsTarget(endpoint_url=endpoint_url, table=names.table, region=stack.region),
        console=console,
    )
    return outcome


class _Simulation:
    """The camera simulator in a thread; its manifest (or its error) once it finishes."""

    def __init__(self, run: Callable[[], SimulationManifest]):
        self._manifest: SimulationManifest | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._target, args=(run,), name="camera-simulator", daemon=True
        )
        self._thread.start()

    def _target(self, run: Callable[[], SimulationManifest]) -> None:
        try:
            self._manifest = run()
        except BaseException as exc:  # re-raised in the main thread by result()
            self._error = exc

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> SimulationManifest:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._manifest is not None
        return self._manifest


def _start_simulation(settings: DemoSettings, stack: LocalStack, state: LiveState) -> _Simulation:
    def on_upload(uploaded: UploadedObject) -> None:
        state.uploaded += 1
        state.uploads_per_camera[uploaded.camera_id] += 1

    return _Simulation(
        lambda: simulate_cameras(
            stack,
            cameras=settings.cameras,
            frames_per_camera=settings.frames_per_camera,
            frames_per_second=settings.frames_per_second or None,
            bad_objects=settings.bad_objects,
            oversized_bytes=settings.max_bytes + 500_000,
            duplicate_notification=settings.duplicate_notification,
            seed=settings.seed,
            on_upload=on_upload,
        )
    )


def _watch(
    stack: LocalStack,
    state: LiveState,
    simulation: _Simulation,
    cameras: list[str],
    console: Console,
    *,
    worker_failed: Callable[[], bool],
) -> None:
    """Live view until the simulator is done and the queue is empty (or a deadline passes).

    An empty queue (nothing visible, nothing in flight) means every message was either
    deleted after processing or moved to the DLQ. The deadline after the last upload allows a
    failing message its full redrive: maxReceiveCount visibility timeouts, plus a margin.
    """
    settle_s = stack.visibility_timeout_s * (MAX_RECEIVE_COUNT + 1) + 30
    simulation_ended: float | None = None
    with Live(
        render_live(state, cameras), console=console, refresh_per_second=4, redirect_stdout=False
    ) as live:
        while not worker_failed():  # its error is raised by worker.stop()
            poll_live_state(stack, state)
            state.simulator_done = simulation.done()
            live.update(render_live(state, cameras))
            if state.simulator_done:
                simulation_ended = simulation_ended or time.monotonic()
                if state.queue_visible == 0 and state.queue_in_flight == 0:
                    poll_live_state(stack, state)  # the last batch's results, written before its delete
                    live.update(render_live(state, cameras))
                    return
                if time.monotonic() - simulation_ended > settle_s:
                    console.print(f"[red]The queue did not drain within {settle_s}s of the last upload.[/]")
                    return
            time.sleep(0.5)


def summary_table(outcome: DemoOutcome, simulated: SimulationManifest) -> Table:
    result, worker = outcome.account, outcome.worker
    table = Table(title="camsort demo: summary", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("notes")
    bad_expected = sum(1 for obj in simulated.objects if obj.expected_reason)
    table.add_row(
        "uploaded objects", str(result.uploaded), f"{len(simulated.frames)} frames + {bad_expected} bad"
    )
    table.add_row("results", str(result.results), "one item per object")
    table.add_row("  ok", str(result.ok), _agreement(result.label_agreement))
    for label, count in sorted(result.labels.items()):
        table.add_row(f"    {label}", str(count), "")
    table.add_row("  rejected", str(sum(result.rejected.values())), "")
    for reason, count in sorted(result.rejected.items()):
        table.add_row(f"    {reason}", str(count), "")
    table.add_row(
        "unexpected outcomes",
        _count(len(result.unexpected), bad="yellow"),
        "; ".join(result.unexpected[:3]) or "every object got the status the simulator expected",
    )
    table.add_row(
        "DLQ", _count(len(result.dead_lettered), bad="yellow"), f"{result.dlq_messages} message(s) in the DLQ"
    )
    table.add_row("lost", _count(len(result.lost), bad="bold red"), "uploaded, no result and not in the DLQ")
    table.add_row(
        "duplicates suppressed",
        str(outcome.function_duplicates),
        f"frames the function found already recorded (its Duplicates metric): "
        f"{result.duplicate_notifications} duplicate notification(s), {outcome.redeliveries} redelivery(ies)",
    )
    if result.extra_results:
        table.add_row("objects with >1 result", _count(len(result.extra_results), bad="red"), "")
    table.add_row(
        "function latency p50 / p95", _ms_pair(result.function_latency_ms), "download -> result ready"
    )
    table.add_row(
        "end-to-end latency p50 / p95", _ms_pair(result.end_to_end_ms), "upload done -> result written"
    )
    table.add_row(
        "worker",
        str(worker.invocations),
        f"invocations; {worker.received} messages received, {worker.deleted} deleted, "
        f"{worker.reported_failures} reported failed, {worker.failed_batches} failed batches "
        f"({worker.timeouts} over the {outcome.function_timeout_s}s function timeout)",
    )
    return table


def _agreement(agreement: tuple[int, int]) -> str:
    agree, total = agreement
    if not total:
        return ""
    return f"{agree}/{total} match the label the simulator rendered"


def _count(value: int, *, bad: str) -> str:
    return f"[{bad}]{value}[/]" if value else "0"


def _ms_pair(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{percentile(values, 50):.0f} / {percentile(values, 95):.0f} ms"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- state file for --keep-running -----------------------------------------------------------------


def write_state(demo_dir: Path, endpoint_url: str, table: str, pid: int | None) -> Path:
    path = Path(demo_dir) / STATE_FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {"endpoint_url": endpoint_url, "table": table, "region": DEFAULT_REGION, "pid": pid}, indent=2
        )
        + "\n"
    )
    return path


def read_state(demo_dir: Path) -> dict[str, Any] | None:
    path = Path(demo_dir) / STATE_FILENAME
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{path}: not valid JSON ({exc}); delete it and run camsort demo --keep-running"
        ) from exc


def stop_demo_server(cache_dir: Path | None = None, console: Console | None = None) -> bool:
    """Stop the moto server a ``--keep-running`` demo left behind (by the pid it recorded)."""
    console = console or Console()
    demo_dir = Path(cache_dir or default_cache_dir()) / "demo"
    state = read_state(demo_dir)
    if not state:
        console.print(f"No demo server recorded in {demo_dir / STATE_FILENAME}; nothing to stop.")
        return False
    pid = state.get("pid")
    stopped = False
    if isinstance(pid, int) and _is_moto_server(pid):
        os.kill(pid, signal.SIGTERM)
        stopped = True
        console.print(f"Stopped the demo's moto server (pid {pid}, {state.get('endpoint_url')}).")
    else:
        console.print(f"The demo's moto server (pid {pid}) is not running any more.")
    (demo_dir / STATE_FILENAME).unlink(missing_ok=True)
    return stopped


def _is_moto_server(pid: int) -> bool:
    # Only signal the process the demo started: a recycled pid would run something else.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"moto.server" in cmdline


# --- camsort results ---------------------------------------------------------------------------------


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """``30s`` | ``10m`` | ``2h`` | ``1d``."""
    match = _DURATION.match(text)
    if not match:
        raise ConfigurationError(f"--last {text!r}: write a duration like 30s, 10m, 2h or 1d")
    value, unit = match.groups()
    return timedelta(**{_UNITS[unit]: float(value)})


def parse_time(text: str, option: str) -> datetime:
    """ISO 8601; a time without zone is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(
            f"{option} {text!r}: write an ISO 8601 time like 2026-11-22T07:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ResultsQuery:
    camera: str
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None  # "ok" | "rejected"
    limit: int | None = None


@dataclass(frozen=True)
class ResultsTarget:
    endpoint_url: str | None  # None: AWS itself (credentials and region from the environment)
    table: str
    region: str | None = None


def resolve_target(
    endpoint_url: str | None, table: str | None, region: str | None, cache_dir: Path | None = None
) -> ResultsTarget:
    """Explicit options win; with neither endpoint nor table, the running demo's state file."""
    if endpoint_url or table:
        if not table:
            state = read_state(Path(cache_dir or default_cache_dir()) / "demo") or {}
            table = state.get("table") or StackNames().table
        return ResultsTarget(endpoint_url=endpoint_url, table=table, region=region)
    demo_dir = Path(cache_dir or default_cache_dir()) / "demo"
    state = read_state(demo_dir)
    if not state:
        raise ConfigurationError(
            f"no results table given and no running demo recorded in {demo_dir / STATE_FILENAME}; "
            "run `camsort demo --keep-running` first, or pass --table (and --endpoint-url for a local server)"
        )
    if not _answers(state["endpoint_url"]):
        raise ConfigurationError(
            f"the demo's moto server at {state['endpoint_url']} (from {demo_dir / STATE_FILENAME}) is not answering; "
            "run `camsort demo --keep-running` again"
        )
    return ResultsTarget(endpoint_url=state["endpoint_url"], table=state["table"], region=state.get("region"))


def _answers(endpoint_url: str) -> bool:
    try:
        urllib.request.urlopen(f"{endpoint_url}/moto-api/data.json", timeout=2).close()
        return True
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def query_results(query: ResultsQuery, target: ResultsTarget) -> list[dict[str, Any]]:
    """Result items of one camera in [since, until], oldest capture first, filtered by status."""
    from functions.results import ResultsTable

    if target.endpoint_url:
        dynamodb = local_client("dynamodb", target.endpoint_url, target.region or DEFAULT_REGION)
    else:
        import boto3

        dynamodb = boto3.session.Session(region_name=target.region).client("dynamodb")
    table = ResultsTable(target.table, dynamodb)
    found = []
    # Status is not part of the index key: filter while reading, stop at the limit.
    for item in table.iter_camera(query.camera, query.since, query.until):
        if query.status and item.get("status") != query.status:
            continue
        found.append(item)
        if query.limit is not None and len(found) >= query.limit:
            break
    return found


def results_table(items: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    # The capture time is the row's identity: never wrapped; long keys and reasons fold instead.
    table.add_column("captured_at", no_wrap=True, min_width=24)
    table.add_column("status", no_wrap=True)
    table.add_column("label", no_wrap=True)
    table.add_column("conf.", justify="right", no_wrap=True)
    table.add_column("reason", overflow="fold")
    table.add_column("ms", justify="right", no_wrap=True)
    table.add_column("object", overflow="fold")
    for item in items:
        confidence = item.get("confidence")
        latency = item.get("latency_ms")
        table.add_row(
            item.get("captured_at", ""),
            item.get("status", ""),
            item.get("label", "") or "",
            f"{float(confidence):.3f}" if confidence is not None else "",
            item.get("reason", "") or "",
            f"{float(latency):.0f}" if latency is not None else "",
            item.get("key", "").rsplit("/", 1)[-1],  # one camera per table: its name is enough
        )
    return table


def to_json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [to_json(v) for v in value]
    return value


def show_results(
    query: ResultsQuery, target: ResultsTarget, *, as_json: bool = False, console: Console | None = None
) -> list[dict[str, Any]]:
    """Query and print (a rich table, or JSON lines of the items); returns the items."""
    console = console or Console()
    items = query_results(query, target)
    if as_json:
        # Plain JSON (no colour, no wrapping), so it pipes into jq and friends.
        console.file.write(json.dumps([to_json(item) for item in items], indent=2, sort_keys=True) + "\n")
        return items
    window = " .. ".join(_iso(t) if t else "open" for t in (query.since, query.until))
    title = f"{target.table}: {query.camera}, {window}" + (f", status {query.status}" if query.status else "")
    console.print(results_table(items, f"{title} ({len(items)} shown)"))
    return items


def results_command(
    *,
    camera: str,
    since: str | None,
    until: str | None,
    last: str | None,
    status: str | None,
    limit: int | None,
    endpoint_url: str | None,
    table: str | None,
    region: str | None,
    as_json: bool,
    console: Console | None = None,
) -> list[dict[str, Any]]:
    """`camsort results`: parse the options, find the table, query, print."""
    if last and since:
        raise ConfigurationError("--last and --since both set the start of the range; give one of them")
    now = datetime.now(UTC)
    start = now - parse_duration(last) if last else (parse_time(since, "--since") if since else None)
    end = parse_time(until, "--until") if until else None
    if start and end and start > end:
        raise ConfigurationError(f"the range starts ({_iso(start)}) after it ends ({_iso(end)})")
    query = ResultsQuery(camera=camera, since=start, until=end, status=status, limit=limit)
    return show_results(query, resolve_target(endpoint_url, table, region), as_json=as_json, console=console)
