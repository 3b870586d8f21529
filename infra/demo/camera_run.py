"""The demo cameras' run: the local worker and the simulated cameras (a few unfamiliar frames
among them), with the live view, until the queue drains; then the account of every upload."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from infra.demo.accounting import DeliveryTracker, account, emf_metric_total
from infra.demo.live_view import LiveState, watch
from infra.demo.settings import DemoSettings
from infra.demo.simulator import SimulationManifest, UploadedObject, camera_ids, simulate_cameras
from infra.demo.summary import DemoOutcome
from infra.demo.tamper import demo_tampers
from infra.demo.unfamiliar import upload_unfamiliar
from infra.local.stack import LocalStack
from infra.local.worker import SqsWorker, WorkerStats


@dataclass
class CameraRun:
    """What the run itself observed; the account is made from it and from the stack."""

    simulated: SimulationManifest
    tracker: DeliveryTracker
    worker: WorkerStats
    log_path: Path
    log_offset: int  # this run's lines of the function log start here
    started_at: datetime
    finished_at: datetime


def run_cameras(
    settings: DemoSettings, stack: LocalStack, environment: dict[str, str], console: Console
) -> CameraRun:
    """The worker and the simulated cameras, with the live view, until the queue drains."""
    tracker = DeliveryTracker()
    state = LiveState()
    cameras = [f"cam-{index + 1:02d}" for index in range(settings.cameras)]
    started_at = datetime.now(UTC)
    log_path = settings.demo_dir / "function.log"
    log_offset = log_path.stat().st_size if log_path.exists() else 0
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
        unfamiliar = upload_unfamiliar(
            stack, cameras, per_kind=settings.unfamiliar_per_kind, seed=settings.seed
        )
        try:
            watch(
                stack,
                state,
                cameras,
                console,
                simulation_done=simulation.done,
                worker_failed=lambda: worker.failed,  # its error is raised by worker.stop()
            )
        finally:
            worker_stats = worker.stop()
    console.print()
    simulated = simulation.result()
    simulated.objects += unfamiliar  # accounted for like every upload
    return CameraRun(
        simulated=simulated,
        tracker=tracker,
        worker=worker_stats,
        log_path=log_path,
        log_offset=log_offset,
        started_at=started_at,
        finished_at=datetime.now(UTC),
    )


def settle(stack: LocalStack, run: CameraRun) -> DemoOutcome:
    """The account of every uploaded object, with the worker's and the function's own counts."""
    return DemoOutcome(
        account=account(stack, run.simulated, run.tracker.snapshot()),
        worker=run.worker,
        function_duplicates=int(emf_metric_total(run.log_path, "Duplicates", offset=run.log_offset)),
        redeliveries=run.tracker.redeliveries,
        function_timeout_s=stack.function_timeout_s,
        endpoint_url=stack.endpoint_url,
        table=stack.names.table,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


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
            scenes=settings.scenes,
            views=settings.tampers,
            tampers=demo_tampers(camera_ids(settings.cameras), settings.frames_per_camera)
            if settings.tampers
            else (),
        )
    )
