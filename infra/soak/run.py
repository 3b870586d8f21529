"""`camsort soak`: many cameras, several worker processes, faults and kills; nothing may be lost.

What runs (all on one moto server on 127.0.0.1, the deployed topology):

* ``cameras`` threads upload ``frames`` objects concurrently, each camera its own keys; of
  the uploads, ``bad_rate`` are corrupt / empty / not an image / oversized, ``overwrite_rate``
  keys get a second version (new bytes), ``duplicate_rate`` get their notification sent a
  second time (rebuilt field for field, as :mod:`infra.demo.simulator` does);
* ``workers`` worker PROCESSES (Lambda concurrency), each an :class:`infra.local.worker.SqsWorker`
  running the real handler, whose AWS calls go through :mod:`infra.local.faults`'s proxy, which
  fails about ``fault_rate`` of them: S3 503 SlowDown, DynamoDB throttling, 500 InternalError,
  connection resets, and a few answers slower than the function's read timeout;
* ``kills`` times a worker process is killed with SIGKILL mid-batch. The kill is armed in
  the worker process when it starts (an argument of the process, not an environment
  variable): the adapter method is wrapped in that process only, and on its n-th call the
  process SIGKILLs itself right after a frame was downloaded (``FrameStore.get_frame``
  returned), right after its tags were written and before its result is
  (``FrameStore.tag_frame`` returned), or right after its result was written and before its
  side effects (``ResultsTable.put_result`` returned). The function's code is unchanged; the
  process dies with its batch in flight, and a new worker process replaces it (a new
  container). The batch comes back after the visibility timeout, as on Lambda.

The account is :func:`infra.ops.audit_report.audit_stack`, the same implementation as
``camsort audit``: every object version ends with exactly one result item or one DLQ entry.
The soak adds one check of its own: no result names an ETag its object version does not have.

This module runs it; the uploads are infra/soak/uploads.py's, the worker processes and their
kill plan infra/soak/workers.py's, the outcome, the check and the report infra/soak/report.py's.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from rich.console import Console

from functions import env
from infra.deploy.topology import StackNames
from infra.local.stack import LocalStack, create_local_stack, upload_model
from infra.soak.report import SoakOutcome, outcome_json, region_sets, soak_table, wrong_versions
from infra.soak.uploads import upload_all
from infra.soak.workers import WorkerPool

# How the fault rate splits between the kinds (infra.local.faults.random_faults).
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
    # The first N cameras (cam-01, ...) have regions (SOAK_REGIONS, answered by the default model):
    # their frames write region items then the frame item, which the kills can cut in between.
    regions_cameras: int = 0


# Four bays of the soak's frames, each answered by the default model.
SOAK_REGIONS = {
    "regions": [
        {
            "name": f"bay{index + 1}",
            "box": [round(0.05 + 0.24 * index, 2), 0.3, round(0.25 + 0.24 * index, 2), 0.9],
        }
        for index in range(4)
    ]
}


def run_soak(settings: SoakSettings, console: Console | None = None) -> SoakOutcome:
    console = console or Console()
    if settings.endpoint_url:
        return _run_on(settings, settings.endpoint_url, console)
    from infra.local.moto_server import MotoServer

    with MotoServer() as server:
        return _run_on(settings, server.endpoint_url, console)


def _run_on(settings: SoakSettings, endpoint_url: str, console: Console) -> SoakOutcome:
    from functions.frames.manifest import read_manifest
    from infra.local.faults import FaultInjectingProxy, random_faults
    from infra.local.function_env import function_environment
    from infra.ops.audit_report import audit_stack

    started = time.monotonic()
    model_dir = settings.model_dir or _demo_model(console)
    stack = create_local_stack(
        endpoint_url,
        StackNames.for_stage(f"soak-{uuid.uuid4().hex[:6]}"),
        function_timeout_s=settings.function_timeout_s,
    )
    model_uri = upload_model(stack, model_dir, version=read_manifest(model_dir).model_sha256[:12])
    set_soak_regions(stack, settings.regions_cameras)
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
                # Tags on (off by default): the soak kills a worker between the tag write and the
                # result write, the widest window a crash can leave a side effect without a result.
                env.WRITE_TAGS: "true",
            },
        )
        pool = WorkerPool(stack, environment, settings, log_dir)
        pool.start()
        try:
            console.print(
                f"soak: {settings.frames} uploads from {settings.cameras} cameras, {settings.workers} worker processes"
            )
            outcome.uploads = upload_all(stack, settings)
            outcome.versions_expected = outcome.uploads["versions"]
            console.print(f"soak: uploads done ({dict(outcome.uploads)}); waiting for the queue to drain")
            wait_drained(stack, pool, console, deadline=started + settings.max_duration_s)
        finally:
            pool.stop()
        outcome.faults = dict(proxy.stats.injected)
    outcome.kills = pool.kills
    outcome.worker_exits = pool.other_exits
    report = audit_stack(stack, grace=timedelta(0))
    outcome.audit = report.to_json()
    outcome.wrong_version = wrong_versions(stack)
    outcome.regions = region_sets(stack)
    outcome.duration_s = round(time.monotonic() - started, 1)
    settings.report_path.write_text(json.dumps(outcome_json(outcome), indent=2, default=str) + "\n")
    return outcome


def set_soak_regions(stack: LocalStack, cameras: int) -> None:
    """cameras/cam-01.json ... in the model bucket (the stack's), where the function reads them."""
    from functions.stores.camera_configs import camera_config_key

    for index in range(cameras):
        stack.client("s3").put_object(
            Bucket=stack.names.bucket,
            Key=camera_config_key(f"cam-{index + 1:02d}"),
            Body=json.dumps(SOAK_REGIONS).encode(),
        )


def _demo_model(console: Console) -> Path:
    from infra.demo.model import ensure_demo_model
    from infra.demo.settings import DemoSettings

    return ensure_demo_model(DemoSettings(), console)


def wait_drained(stack: LocalStack, pool: WorkerPool, console: Console, *, deadline: float) -> None:
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


def soak_command(settings: SoakSettings, console: Console | None = None) -> int:
    console = console or Console()
    outcome = run_soak(settings, console)
    console.print(soak_table(outcome))
    console.print(f"report: {settings.report_path}")
    return 0 if outcome.passed else 1
