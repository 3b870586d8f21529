"""One memory budget for the frames a container decodes at once (its I/O pool's threads).

Each frame holds its decode cost (:func:`functions.frames.decode_cost.decode_cost`, from the header)
while it decodes; a frame whose cost does not fit what is left waits for the others to finish.
A frame never waits for more than the whole budget: the per-frame limit is at most the budget,
and a frame above the per-frame limit is refused before it gets here.

The budget is what the function's memory leaves once the container is up: Lambda's
``AWS_LAMBDA_FUNCTION_MEMORY_SIZE`` minus the process's resident memory after the init phase
(the runtime, the clients, the model session, warmed up) minus ``INFERENCE_RESERVE_FACTOR`` x
the model file (onnxruntime's arena grows by about the model's size on the first batch of ten:
measured, see docs/hardening.md). It never drops below one frame at the per-frame limit, so a
crowded host process (tests, a CLI) degrades to one frame at a time instead of refusing frames.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

MIB = 1 << 20
INFERENCE_RESERVE_FACTOR = 1.5


class DecodeBudget:
    """A byte semaphore: ``with budget.hold(cost): decode()``."""

    def __init__(self, total_bytes: int):
        if total_bytes <= 0:
            raise ValueError(f"a decode budget needs a positive size, got {total_bytes}")
        self.total_bytes = total_bytes
        self._free = total_bytes
        self._changed = threading.Condition()
        self.peak_held = 0  # the most held at once (bench, tests)

    @property
    def held(self) -> int:
        with self._changed:
            return self.total_bytes - self._free

    @contextmanager
    def hold(self, nbytes: int) -> Iterator[None]:
        """Wait until ``nbytes`` fit, hold them for the block. More than the whole budget is a bug."""
        if nbytes > self.total_bytes:
            raise ValueError(f"{nbytes} bytes can never fit a decode budget of {self.total_bytes}")
        with self._changed:
            self._changed.wait_for(lambda: self._free >= nbytes)
            self._free -= nbytes
            self.peak_held = max(self.peak_held, self.total_bytes - self._free)
        try:
            yield
        finally:
            with self._changed:
                self._free += nbytes
                self._changed.notify_all()


def budget_bytes(
    *, memory_mb: int | None, resident_bytes: int, model_bytes: int, per_frame_bytes: int
) -> int:
    """The container's decode budget (see the module docstring); ``memory_mb`` None: the per-frame limit."""
    if memory_mb is None:
        return per_frame_bytes
    left = memory_mb * MIB - resident_bytes - int(INFERENCE_RESERVE_FACTOR * model_bytes)
    return max(per_frame_bytes, left)


def resident_bytes() -> int:
    """This process's resident memory now (Linux /proc; Lambda runs Linux)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
