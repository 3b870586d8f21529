"""functions.concurrency: one pool per container; map_each keeps order and never leaves work behind."""

from __future__ import annotations

import threading

import pytest

from functions.concurrency import IO_WORKERS, io_pool, map_each


def test_the_pool_is_created_once():
    assert io_pool() is io_pool()
    assert io_pool()._max_workers == IO_WORKERS


def test_results_come_back_in_the_order_given_while_running_side_by_side():
    # Every call waits until all of them have started: only concurrent execution gets past it.
    barrier = threading.Barrier(5, timeout=30)

    def square(n: int) -> tuple[int, str]:
        barrier.wait()
        return n * n, threading.current_thread().name

    results = map_each(io_pool(), square, range(5))
    assert [value for value, _ in results] == [0, 1, 4, 9, 16]
    assert all(name.startswith("camsort-io") for _, name in results)


def test_a_single_item_runs_in_the_calling_thread():
    assert map_each(io_pool(), lambda _: threading.current_thread(), [1]) == [threading.current_thread()]
    assert map_each(io_pool(), lambda n: n, []) == []


def test_an_exception_is_raised_only_after_every_item_finished():
    finished = []
    release = threading.Event()

    def work(n: int) -> int:
        if n == 0:
            raise RuntimeError("boom")
        release.wait(timeout=30)
        finished.append(n)
        return n

    def let_go():
        release.set()

    threading.Timer(0.05, let_go).start()
    with pytest.raises(RuntimeError, match="boom"):
        map_each(io_pool(), work, range(4))
    assert sorted(finished) == [1, 2, 3]
