"""The container's I/O thread pool: one invocation's S3/DynamoDB round trips overlap.

On Lambda a frame is billed for wall time, and each AWS call is a network round trip
(10-30 ms in-region) during which the CPU idles. Downloading + decoding a batch's frames
side by side, and writing their tags + results side by side, hides those waits behind each
other. Threads are enough: botocore waits on sockets, Pillow's decoder and onnxruntime release
the GIL.

The pool is created once per container (lazily, thread-safe) and reused by every
invocation: starting threads per invocation would add to every batch's latency.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TypeVar

from botocore.config import Config

T = TypeVar("T")
R = TypeVar("R")

# One thread per frame of a full SQS batch (Lambda's default batch size is 10): a batch's
# downloads all start at once. Also the size of botocore's connection pool (functions.wiring),
# so no thread waits for a connection.
IO_WORKERS = 10

# Short connect timeout (an unreachable endpoint should fail fast and be retried by SQS),
# a read timeout that covers a 20 MB frame on a slow link, botocore's standard retry mode
# (exponential backoff with jitter, retries throttling/5xx/connection errors), and one pooled
# connection per I/O thread (IO_WORKERS), so concurrent calls never queue for one.
CLIENT_CONFIG = Config(
    connect_timeout=3,
    read_timeout=20,
    retries={"mode": "standard", "max_attempts": 3},
    tcp_keepalive=True,
    max_pool_connections=IO_WORKERS,
)

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


IO_THREAD_PREFIX = "camsort-io"  # the local runner routes these threads' logs as the function's


def io_pool() -> Executor:
    """The container's pool, created on first use."""
    global _pool
    if _pool is None:
        with _lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(max_workers=IO_WORKERS, thread_name_prefix=IO_THREAD_PREFIX)
    return _pool


def map_each(pool: Executor, function: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[function(item) for item in items]``, run on ``pool``; results in the order given.

    ``function`` must not raise (the classifier's steps turn every failure into an outcome);
    if it does anyway, the exception propagates here, after every item has finished, so no
    work is left running behind the caller's back.
    """
    items = list(items)
    if len(items) <= 1:  # nothing to overlap: skip the hand-off to another thread
        return [function(item) for item in items]
    futures = [pool.submit(function, item) for item in items]
    results, first_error = [], None
    for future in futures:
        try:
            results.append(future.result())
        except BaseException as exc:  # noqa: BLE001 - re-raised below once all are done
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return results
