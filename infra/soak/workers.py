"""The soak's worker processes (Lambda concurrency): each replaced when it dies, kills armed from a plan.

A kill is armed in the worker process when it starts (an argument of the process): the adapter
method is wrapped in that process only, and on its n-th call the process SIGKILLs itself, right
after a frame was downloaded, right after its tags were written and before its result is, or
right after its result was written and before its side effects (state, review, events).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.local.stack import LocalStack

if TYPE_CHECKING:
    from infra.soak.run import SoakSettings

KILL_POINTS = ("after-download", "between-tag-and-write", "after-result-write")


def arm_kill(point: str, nth: int) -> None:
    """In this worker process only: SIGKILL ourselves right after the n-th call at ``point``."""
    from functions.stores.results import ResultsTable
    from functions.stores.storage import FrameStore

    owner, name = {
        "after-download": (FrameStore, "get_frame"),
        "between-tag-and-write": (FrameStore, "tag_frame"),
        "after-result-write": (ResultsTable, "put_result"),
    }[point]
    original = getattr(owner, name)
    calls = itertools.count(1)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if next(calls) == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, wrapper)


def worker_process(stack: LocalStack, environment: dict[str, str], kill: tuple[str, int] | None,
                   log_path: str) -> None:  # fmt: skip
    from infra.local.worker import SqsWorker

    # SIGTERM from the pool = stop after the current batch. (Not a multiprocessing.Event: a
    # process SIGKILLed while waiting on one leaves its lock held, and every other waiter and
    # the setter then block for ever.)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if kill is not None:
        arm_kill(*kill)
    with open(log_path, "a") as output:
        worker = SqsWorker(stack, environment, batch_size=10, batching_window_s=0.5, function_output=output)
        worker.start()
        while not stop.wait(0.5):
            if worker.failed:
                break
        worker.stop()  # raises when the worker failed: the process exits non-zero


class WorkerPool:
    """``workers`` processes, each replaced when it dies; kills armed from a plan."""

    def __init__(self, stack: LocalStack, environment: dict[str, str], settings: SoakSettings, log_dir: Path):
        self._context = multiprocessing.get_context("spawn")
        self.stack, self.environment, self.log_dir = stack, environment, log_dir
        # Take the points in turn; a low n so each armed process dies early, mid-batch.
        self._plan = deque((KILL_POINTS[i % len(KILL_POINTS)], 2 + i % 3) for i in range(settings.kills))
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
            target=worker_process,
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
