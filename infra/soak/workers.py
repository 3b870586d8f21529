"""The soak's worker processes (Lambda concurrency): each replaced when it dies, kills armed from a plan.

A kill is armed in the worker process when it starts (an argument of the process): the adapter
method is wrapped in that process only, and on its n-th call the process SIGKILLs itself, right
after a frame was downloaded, right after its tags were written and before its result is, or
right after its result was written and before its side effects (state, review, events).
``during-decode`` stands for a native decoder crash: the process SIGKILLs itself when it starts
decoding the frame whose key contains the given text (a string instead of a count).

Each worker process runs the function under the deployed memory size (infra.local.worker.limit_memory).
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
DECODE_KILL = "during-decode"
Kill = tuple[str, int | str]


def arm_kill(point: str, nth: int | str) -> None:
    """In this worker process only: SIGKILL ourselves right after the n-th call at ``point``
    (``during-decode``: as the frame whose key contains ``nth`` starts decoding)."""
    from functions.stores.results import ResultsTable
    from functions.stores.storage import FrameStore
    from functions.wiring import App

    if point == DECODE_KILL:
        decode = App.decode

        def crashing_decode(app: App, data: bytes, source: str) -> Any:
            if str(nth) in source:
                os.kill(os.getpid(), signal.SIGKILL)
            return decode(app, data, source)

        App.decode = crashing_decode  # type: ignore[method-assign,assignment]
        return

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


def worker_process(stack: LocalStack, environment: dict[str, str], kill: Kill | None, log_path: str) -> None:
    from functions import env
    from infra.local.worker import SqsWorker, limit_memory

    memory_mb = int(environment[env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE])
    limit_memory(memory_mb)  # first: the init phase runs under it too, as on Lambda
    # SIGTERM from the pool = stop after the current batch. (Not a multiprocessing.Event: a
    # process SIGKILLed while waiting on one leaves its lock held, and every other waiter and
    # the setter then block for ever.)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    if kill is not None:
        arm_kill(*kill)
    with open(log_path, "a") as output:
        worker = SqsWorker(stack, environment, batch_size=10, batching_window_s=0.5, function_output=output,
                           memory_mb=memory_mb, oom_kills=True)  # fmt: skip
        worker.start()
        while not stop.wait(0.5):
            if worker.failed:
                break
        worker.stop()  # raises when the worker failed: the process exits non-zero


class WorkerPool:
    """``workers`` processes, each replaced when it dies; kills armed from a plan."""

    def __init__(
        self,
        stack: LocalStack,
        environment: dict[str, str],
        settings: SoakSettings,
        log_dir: Path,
        plan: list[Kill] | None = None,
    ):
        self._context = multiprocessing.get_context("spawn")
        self.stack, self.environment, self.log_dir = stack, environment, log_dir
        # Take the points in turn; a low n so each armed process dies early, mid-batch.
        default = [(KILL_POINTS[i % len(KILL_POINTS)], 2 + i % 3) for i in range(settings.kills)]
        self._plan: deque[Kill] = deque(default if plan is None else plan)
        self._slots: list[tuple[Any, Kill | None]] = []
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

    def pids(self) -> list[int]:
        """The worker processes running now (their /proc tells their limits)."""
        return [process.pid for process, _kill in self._slots if process.is_alive()]

    def alive(self) -> int:
        return sum(1 for process, _kill in self._slots if process.is_alive())

    def _spawn(self) -> tuple[Any, Kill | None]:
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
