"""`camsort soak`: many cameras, several worker processes, faults and kills; nothing may be lost.

What runs (all on one moto server on 127.0.0.1, the deployed topology):

* ``cameras`` threads upload ``frames`` objects concurrently, each camera its own keys; of
  the uploads, ``bad_rate`` are corrupt / empty / not an image / oversized, ``overwrite_rate``
  keys get a second version (new bytes), ``duplicate_rate`` get their notification sent a
  second time (rebuilt field for field, as :mod:`infra.simulator` does);
* ``workers`` worker PROCESSES (Lambda concurrency), each an :class:`infra.worker.SqsWorker`
  running the real handler, whose AWS calls go through :mod:`infra.faults`'s proxy, which
  fails about ``fault_rate`` of them: S3 503 SlowDown, DynamoDB throttling, 500 InternalError,
  connection resets, and a few answers slower than the function's read timeout;
* ``kills`` times a worker process is killed with SIGKILL mid-batch. The kill is armed in
  the worker process when it starts (an argument of the process, not an environment
  variable): the adapter method is wrapped in that process only, and on its n-th call the
  process SIGKILLs itself, either right after a frame was downloaded
  (``FrameStore.get_frame`` returned) or right after its tags were written and before its
  result is (``FrameStore.tag_frame`` returned). The function's code is unchanged; the
  process dies with its batch in flight, and a new worker process replaces it (a new
  container). The batch comes back after the visibility timeout, as on Lambda.

The account is :func:`infra.audit_report.audit_stack`, the same implementation as
``camsort audit``: every object version ends with exactly one result item or one DLQ entry.
The soak adds one check of its own: no result names an ETag its object version does not have.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import signal
import threading
import time
import uuid
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from functions import env
from infra.local_stack import LocalStack, create_local_stack, upload_model
from infra.topology import StackNames

KILL_POINTS = ("after-download", "between-tag-and-write")
BAD_KINDS = ("truncated", "empty", "not_an_image", "oversized")
# How the fault rate splits between the kinds (infra.faults.random_faults).
FAULT_SHARES = {
    "s3-slowdown": 0.35,
    "dynamodb-throttling": 0.25,
    "internal-error": 0.2,
    "connection-reset": 0.15,
    "slow": 0.05,
}


@dataclass
class SoakSettings:
    frames: int = 2000
    cameras: int = 20
    workers: int = 2
    kills: int = 4
    fault_rate: float = 0.05
    duplicate_rate: float = 0.05
    bad_rate: float = 0.02
    overwrite_rate: float = 0.01
    seed: int = 0
    # Short, so that a killed batch comes back soon (visibility timeout = 6 x this).
    function_timeout_s: int = 5
    max_bytes: int = 150_000
    model_dir: Path | None = None  # default: the demo's cached model (trained once if missing)
    endpoint_url: str | None = None  # default: start a moto server
    report_path: Path = Path("soak-report.json")
    max_duration_s: float = 1800.0


@dataclass
class SoakOutcome:
    settings: dict[str, Any]
    uploads: Counter[str] = field(default_factory=Counter)
    faults: dict[str, int] = field(default_factory=dict)
    kills: Counter[str] = field(default_factory=Counter)
    worker_exits: list[int | None] = field(default_factory=list)  # non-kill exits of worker processes
    audit: dict[str, Any] = field(default_factory=dict)
    wrong_version: list[str] = field(default_factory=list)
    versions_expected: int = 0
    duration_s: float = 0.0

    @property
    def lost(self) -> int:
        return self.audit["counts"]["unaccounted"] + self.audit["counts"]["pending"]

    @property
    def passed(self) -> bool:
        return (
            self.lost == 0
            and not self.audit["duplicated"]
            and not self.audit["orphans"]
            and not self.wrong_version
            and self.audit["versions"] == self.versions_expected
        )


def run_soak(settings: SoakSettings, console: Console | None = None) -> SoakOutcome:
    console = console or Console()
    if settings.endpoint_url:
        return _run_on(settings, settings.endpoint_url, console)
    from infra.moto_server import MotoServer

    with MotoServer() as server:
        return _run_on(settings, server.endpoint_url, console)


def _run_on(settings: SoakSettings, endpoint_url: str, console: Console) -> SoakOutcome:
    from functions.manifest import read_manifest
    from infra.audit_report import audit_stack
    from infra.faults import FaultInjectingProxy, random_faults
    from infra.function_env import function_environment

    started = time.monotonic()
    model_dir = settings.model_dir or _demo_model(console)
    stack = create_local_stack(
        endpoint_url,
        StackNames.for_stage(f"soak-{uuid.uuid4().hex[:6]}"),
        function_timeout_s=settings.function_timeout_s,
    )
    model_uri = upload_model(stack, model_dir, version=read_manifest(model_dir).model_sha256[:12])
    outcome = SoakOutcome(settings={k: str(v) for k, v in asdict(settings).items()})
    rates = {kind: settings.fault_rate * share for kind, share in FAULT_SHARES.items()}
    from functions.wiring import CLIENT_CONFIG

    faults = random_faults(
        rates,
        seed=settings.seed,
        slow_s=CLIENT_CONFIG.read_timeout + 1,
        max_slow=max(1, settings.frames // 700),
    )
    log_dir = settings.report_path.parent / f"{settings.report_path.stem}-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with FaultInjectingProxy(stack.endpoint_url, faults) as proxy:
        environment = function_environment(
            stack,
            model_uri,
            endpoint_url=proxy.endpoint_url,
            extra={
                env.MAX_BYTES: str(settings.max_bytes),
                env.ONNX_THREADS: "1",
                env.MODEL_CACHE_DIR: str(log_dir / "model-cache"),
            },
        )
        pool = _WorkerPool(stack, environment, settings, log_dir)
        pool.start()
        try:
            console.print(
                f"soak: {settings.frames} uploads from {settings.cameras} cameras, {settings.workers} worker processes"
            )
            outcome.uploads = _upload_all(stack, settings)
            outcome.versions_expected = outcome.uploads["versions"]
            console.print(f"soak: uploads done ({dict(outcome.uploads)}); waiting for the queue to drain")
            _wait_drained(stack, pool, console, deadline=started + settings.max_duration_s)
        finally:
            pool.stop()
        outcome.faults = dict(proxy.stats.injected)
    outcome.kills = pool.kills
    outcome.worker_exits = pool.other_exits
    report = audit_stack(stack, grace=timedelta(0))
    outcome.audit = report.to_json()
    outcome.wrong_version = _wrong_versions(stack)
    outcome.duration_s = round(time.monotonic() - started, 1)
    settings.report_path.write_text(json.dumps(_as_json(outcome), indent=2, default=str) + "\n")
    return outcome


def _demo_model(console: Console) -> Path:
    from infra.demo_model import ensure_demo_model
    from infra.demo_settings import DemoSettings

    return ensure_demo_model(DemoSettings(), console)


# --- uploads --------------------------------------------------------------------------------


def _upload_all(stack: LocalStack, settings: SoakSettings) -> Counter[str]:
    import random

    from infra.simulator import bad_object, frame_key, s3_notification_body
    from training.synthetic import LABELS, frame_jpeg

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


# --- worker processes -----------------------------------------------------------------------


def _arm_kill(point: str, nth: int) -> None:
    """In this worker process only: SIGKILL ourselves right after the n-th call at ``point``."""
    from functions.storage import FrameStore

    name = {"after-download": "get_frame", "between-tag-and-write": "tag_frame"}[point]
    original = getattr(FrameStore, name)
    calls = itertools.count(1)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if next(calls) == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(FrameStore, name, wrapper)


def _worker_process(stack: LocalStack, environment: dict[str, str], kill: tuple[str, int] | None,
                    log_path: str) -> None:  # fmt: skip
    from infra.worker import SqsWorker

    # SIGTERM from the pool = stop after the current batch. (Not a multiprocessing.Event: a
    # process SIGKILLed while waiting on one leaves its lock held, and every other waiter and
    # the setter then block for ever.)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if kill is not None:
        _arm_kill(*kill)
    with open(log_path, "a") as output:
        worker = SqsWorker(stack, environment, batch_size=10, batching_window_s=0.5, function_output=output)
        worker.start()
        while not stop.wait(0.5):
            if worker.failed:
                break
        worker.stop()  # raises when the worker failed: the process exits non-zero


class _WorkerPool:
    """``workers`` processes, each replaced when it dies; kills armed from a plan."""

    def __init__(self, stack: LocalStack, environment: dict[str, str], settings: SoakSettings, log_dir: Path):
        self._context = multiprocessing.get_context("spawn")
        self.stack, self.environment, self.log_dir = stack, environment, log_dir
        # Alternate the two points; a low n so each armed process dies early, mid-batch.
        self._plan = deque((KILL_POINTS[i % 2], 2 + i % 3) for i in range(settings.kills))
        self._slots: list[tuple[Any, tuple[str, int] | None]] = []
        self.kills: Counter[str] = Counter()
        self.other_exits: list[int | None] = []
        self._generation = itertools.count()
        self._watcher = threading.Thread(target=self._watch, name="soak-workers", daemon=True)
        self._watching = threading.Event()
        self._workers = settings.workers

    def start(self) -> None:
        self._slots = [self._spawn() for _ in range(self._workers)]
        self._watching.set()
        self._watcher.start()

    def alive(self) -> int:
        return sum(1 for process, _kill in self._slots if process.is_alive())

    def _spawn(self) -> tuple[Any, tuple[str, int] | None]:
        kill = self._plan.popleft() if self._plan else None
        log_path = str(self.log_dir / f"worker-{next(self._generation)}.log")
        process = self._context.Process(
            target=_worker_process,
            args=(self.stack, self.environment, kill, log_path),
            daemon=True,
        )
        process.start()
        return process, kill

    def _watch(self) -> None:
        while self._watching.is_set():
            for index, (process, kill) in enumerate(self._slots):
                if process.is_alive() or not self._watching.is_set():
                    continue
                if process.exitcode == -signal.SIGKILL and kill is not None:
                    self.kills[kill[0]] += 1
                else:
                    self.other_exits.append(process.exitcode)
                self._slots[index] = self._spawn()
            time.sleep(0.2)

    def stop(self) -> None:
        self._watching.clear()
        self._watcher.join(timeout=5)
        for process, _kill in self._slots:
            process.terminate()  # SIGTERM to our own child: it finishes its batch and stops
        for process, _kill in self._slots:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()  # our own child, by its handle
                process.join()


def _wait_drained(stack: LocalStack, pool: _WorkerPool, console: Console, *, deadline: float) -> None:
    """Until the queue holds nothing (visible or in flight) twice in a row; progress every 10 s."""
    sqs = stack.client("sqs")
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    empty_checks, last_report = 0, 0.0
    while time.monotonic() < deadline:
        attributes = sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=names)["Attributes"]
        visible, in_flight = (int(attributes[name]) for name in names)
        empty_checks = empty_checks + 1 if visible + in_flight == 0 else 0
        if empty_checks >= 2:
            return
        if time.monotonic() - last_report >= 10:
            last_report = time.monotonic()
            console.print(
                f"soak: queue {visible} visible, {in_flight} in flight; {sum(pool.kills.values())} kills, "
                f"{pool.alive()} worker processes alive"
            )
        time.sleep(1.0)
    raise TimeoutError(f"the queue did not drain within the soak's time limit; see {pool.log_dir}")


def _wrong_versions(stack: LocalStack) -> list[str]:
    """Results whose ETag differs from the ETag of the object version they are keyed by."""
    from infra.accounting import scan_results

    etags: dict[tuple[str, str], str] = {}
    s3 = stack.client("s3")
    for page in s3.get_paginator("list_object_versions").paginate(
        Bucket=stack.names.bucket, Prefix=stack.names.frames_prefix
    ):
        for entry in page.get("Versions", []):
            etags[(entry["Key"], entry["VersionId"])] = entry["ETag"].strip('"')
    by_key: dict[str, set[str]] = {}
    for (key, _vid), etag in etags.items():
        by_key.setdefault(key, set()).add(etag)
    wrong = []
    for item in scan_results(stack):
        key, version = item["key"], item["object_version"]
        expected = {etags[(key, version)]} if (key, version) in etags else by_key.get(key, set())
        if item.get("etag") not in expected:
            wrong.append(f"{key}@{version}: result for ETag {item.get('etag')}")
    return wrong


# --- report ---------------------------------------------------------------------------------


def _as_json(outcome: SoakOutcome) -> dict[str, Any]:
    return {
        "passed": outcome.passed,
        "lost": outcome.lost,
        "duplicated": len(outcome.audit["duplicated"]),
        "wrong_version": outcome.wrong_version,
        "versions_expected": outcome.versions_expected,
        "uploads": dict(outcome.uploads),
        "faults_injected": outcome.faults,
        "kills": dict(outcome.kills),
        "worker_exits_other_than_kills": outcome.worker_exits,
        "duration_s": outcome.duration_s,
        "audit": outcome.audit,
        "settings": outcome.settings,
    }


def soak_table(outcome: SoakOutcome) -> Table:
    counts = outcome.audit["counts"]
    table = Table(title=f"Soak: {'PASSED' if outcome.passed else 'FAILED'} in {outcome.duration_s:.0f} s")
    table.add_column("what", style="bold")
    table.add_column("count", justify="right")
    uploads = outcome.uploads
    rows = [
        ("uploads (objects)", uploads["uploads"]),
        ("  of which bad (corrupt/empty/not an image/oversized)", sum(uploads[k] for k in BAD_KINDS)),
        ("  overwrites (a second version)", uploads["overwrites"]),
        ("  duplicated notifications", uploads["duplicate_notifications"]),
        ("object versions expected / listed", f"{outcome.versions_expected} / {outcome.audit['versions']}"),
        ("faults injected (all kinds)", sum(outcome.faults.values())),
        *[(f"  {name}", n) for name, n in sorted(outcome.faults.items())],
        ("worker processes SIGKILLed", sum(outcome.kills.values())),
        *[(f"  {point}", n) for point, n in sorted(outcome.kills.items())],
        ("accounted: ok", counts["ok"]),
        ("accounted: rejected", counts["rejected"]),
        ("accounted: superseded", counts["superseded"]),
        ("accounted: dead-lettered", counts["dead_lettered"]),
        ("LOST (no result, no DLQ entry)", outcome.lost),
        ("DUPLICATED (2+ results, or result + DLQ)", len(outcome.audit["duplicated"])),
        ("results for the WRONG version", len(outcome.wrong_version) + len(outcome.audit["orphans"])),
    ]
    for name, value in rows:
        table.add_row(name, str(value))
    return table


def soak_command(settings: SoakSettings, console: Console | None = None) -> int:
    console = console or Console()
    outcome = run_soak(settings, console)
    console.print(soak_table(outcome))
    console.print(f"report: {settings.report_path}")
    return 0 if outcome.passed else 1
