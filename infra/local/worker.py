"""Lambda's SQS event source, locally: poll the queue, call the very same handler, delete what succeeded.

What it does, as Lambda's event source mapping does (with ``ReportBatchItemFailures`` on):

* long-polls ``ReceiveMessage`` and gathers a batch of up to ``batch_size`` messages, waiting at
  most ``batching_window_s`` (``maximumBatchingWindow``) for a batch to fill;
* builds the Lambda-shaped SQS event (``Records`` with messageId, receiptHandle, body,
  attributes incl. ApproximateReceiveCount, messageAttributes, md5OfBody, eventSource
  ``aws:sqs``, eventSourceARN, awsRegion) and calls ``functions.handler.lambda_handler`` in this
  process with a Lambda-like context;
* deletes every message of the batch except those named in ``batchItemFailures``; an exception
  from the handler, a malformed response (an identifier that is not in the batch) or an
  invocation that overran the function timeout fails the whole batch, and nothing is deleted;
* leaves failed messages alone: they reappear after the queue's visibility timeout, and SQS's
  own RedrivePolicy moves them to the DLQ after maxReceiveCount receives (moto's server
  implements redrive, see infra/local/stack.py, so the worker does not duplicate the rule).

The function's environment (CAMSORT_* variables, AWS_ENDPOINT_URL, credentials, region; built by
infra/local/function_env.py) is set as process environment variables while the worker runs, the way
Lambda sets them, and the function's per-container state (settings, clients, model session) is
built once per worker (the "init phase") before the first invocation. The Lambda-shaped records
and the batchItemFailures rule are infra/local/sqs_events.py's.

Differences from Lambda, said plainly: one container, no concurrency scaling; a handler that
overruns its timeout cannot be killed in-process, so it is allowed to finish and its batch is
then counted as failed (as Lambda would after killing it).

Memory: a worker running in a process of its own (the soak's, the hardening tests') calls
:func:`limit_memory` first, so the function runs under the deployed memory size as an
address-space limit, and with ``oom_kills`` a MemoryError that escapes the handler kills the
process, as Lambda's out-of-memory kill does (docs/hardening.md says what differs).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import resource
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from infra.deploy.topology import FUNCTION_MEMORY_MB
from infra.local.function_env import (
    DEFAULT_FUNCTION_NAME,
    HANDLER,
    Handler,
    environment_variables,
    function_output,
    load_handler,
)
from infra.local.sqs_events import failed_message_ids, sqs_record
from infra.local.stack import LocalStack

log = logging.getLogger(__name__)

# SQS returns at most 10 messages per ReceiveMessage call.
_RECEIVE_LIMIT = 10

# RLIMIT_AS counts address space, Lambda counts memory. glibc reserves 64 MiB of address space
# per thread arena and each thread has a stack: capped at 2 arenas (M_ARENA_MAX), a warmed
# container (ResNet50 fp32, 1 onnxruntime thread, 10 I/O threads, one batch) maps 748 MiB for
# 427 MiB resident (1,324 MiB with glibc's default arenas). This allowance covers that gap.
ADDRESS_SPACE_ALLOWANCE_MIB = 384
_M_ARENA_MAX = -8  # glibc's mallopt parameter


def limit_memory(memory_mb: int) -> int:
    """In a worker's own process only: the deployed memory size as RLIMIT_AS; returns the limit in bytes.

    Called before anything large is allocated (the model, the I/O pool), so the init phase
    runs under it too, as on Lambda.
    """
    libc_name = ctypes.util.find_library("c")
    if libc_name:
        ctypes.CDLL(libc_name).mallopt(_M_ARENA_MAX, 2)
    limit = (memory_mb + ADDRESS_SPACE_ALLOWANCE_MIB) << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return limit


@dataclass
class WorkerStats:
    invocations: int = 0
    received: int = 0  # messages received (redeliveries counted again)
    deleted: int = 0  # acknowledged: processed or deliberately skipped by the function
    reported_failures: int = 0  # messages named in batchItemFailures
    failed_batches: int = 0  # handler exception, malformed response or timeout: nothing deleted
    timeouts: int = 0
    errors: list[str] = field(default_factory=list)  # one line per failed batch, newest last


# Called after each invocation with (records, ids of the records that failed).
BatchObserver = Callable[[list[dict[str, Any]], set[str]], None]


class SqsWorker:
    """``SqsWorker(stack, environment).run_until_drained(idle_s=2)`` or ``.start()`` / ``.stop()``."""

    def __init__(
        self,
        stack: LocalStack,
        environment: Mapping[str, str],
        *,
        handler: str = HANDLER,
        batch_size: int = 10,
        batching_window_s: float = 0.0,
        wait_time_s: int = 1,
        function_name: str = DEFAULT_FUNCTION_NAME,
        memory_mb: int = FUNCTION_MEMORY_MB,
        observer: BatchObserver | None = None,
        function_output: TextIO | None = None,
        retry_init_errors: bool = False,
        oom_kills: bool = False,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.stack = stack
        self.environment = dict(environment)
        self.handler_path = handler
        self.batch_size = batch_size
        self.batching_window_s = batching_window_s
        self.wait_time_s = wait_time_s
        self.function_name = function_name
        self.memory_mb = memory_mb
        self.observer = observer
        # Where the function's stdout (its JSON logs and EMF metrics, CloudWatch's input on
        # AWS) goes; None: this process's stdout. The demo sends it to a log file so the
        # live display stays readable.
        self.function_output = function_output
        # False: a failing init phase (e.g. the model refused) stops the worker at once with
        # that error (the demo's fail-fast). True: as Lambda, the error is logged, every
        # invocation retries the init and fails, and SQS redelivers then dead-letters.
        self.retry_init_errors = retry_init_errors
        # True (a worker process under limit_memory): running out of memory kills the process.
        self.oom_kills = oom_kills
        self.stats = WorkerStats()
        # The event source mapping talks to SQS directly, never through the function's endpoint,
        # and (as on AWS) with the function's execution role when the environment carries it.
        self._sqs = _queue_client(stack, self.environment)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handler: Handler | None = None
        self._failure: BaseException | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, *, max_duration_s: float | None = None) -> SqsWorker:
        """Run in a background thread until :meth:`stop` (or ``max_duration_s``)."""
        self._thread = threading.Thread(
            target=self._run_in_thread,
            kwargs={"max_duration_s": max_duration_s},
            name="sqs-worker",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 60.0) -> WorkerStats:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            if self._thread.is_alive():
                raise RuntimeError(
                    f"the SQS worker did not stop within {timeout_s}s (a handler call still running)"
                )
        if self._failure is not None:
            raise self._failure  # the original error (e.g. the model failed to load in the init phase)
        return self.stats

    @property
    def failed(self) -> bool:
        """True once the background thread has stopped on an error (see :meth:`stop`)."""
        return self._failure is not None

    def __enter__(self) -> SqsWorker:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _run_in_thread(self, max_duration_s: float | None) -> None:
        try:
            self.run(max_duration_s=max_duration_s)
        except BaseException as exc:  # surfaced by stop(); a thread cannot raise to its starter
            log.exception("SQS worker failed")
            self._failure = exc

    # --- the loop --------------------------------------------------------------------------

    def run(self, *, idle_s: float | None = None, max_duration_s: float | None = None) -> WorkerStats:
        """Poll and invoke until stopped, until the queue has been empty for ``idle_s``, or
        until ``max_duration_s`` has passed. "Empty" means no visible and no in-flight
        messages, so a failed message waiting for redelivery keeps the worker polling."""
        started = time.monotonic()
        with environment_variables(self.environment), function_output(self.function_output):
            self._init_container()
            try:
                self._poll(started, idle_s, max_duration_s)
            finally:
                self._drop_container()
        return self.stats

    def _poll(self, started: float, idle_s: float | None, max_duration_s: float | None) -> None:
        idle_since: float | None = None
        while not self._stop.is_set():
            if max_duration_s is not None and time.monotonic() - started >= max_duration_s:
                return
            messages = self._receive_batch()
            if messages:
                idle_since = None
                self._invoke(messages)
            elif idle_s is not None:
                if not self._queue_is_empty():
                    idle_since = None
                    continue
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= idle_s:
                    return

    def run_until_drained(self, *, idle_s: float = 1.0, max_duration_s: float = 120.0) -> WorkerStats:
        return self.run(idle_s=idle_s, max_duration_s=max_duration_s)

    def _init_container(self) -> None:
        # Lambda's init phase, with the function's environment set: a fresh container (nothing
        # carried over from another worker in this process), the handler module imported, and
        # its per-container state (settings, clients, model session) built once, before the
        # first event waits on it.
        from functions import wiring

        wiring.install_app(None)
        try:
            self._load()
        except Exception:
            if not self.retry_init_errors:
                raise
            self._handler = None
            log.exception("the function's init phase failed; each invocation will retry it")

    def _load(self) -> Handler:
        """Import the handler and build the app (inside Lambda the import itself builds it)."""
        from functions import wiring

        self._handler = load_handler(self.handler_path)
        wiring.default_app()
        return self._handler

    @staticmethod
    def _drop_container() -> None:
        from functions import wiring

        wiring.install_app(None)

    def _receive_batch(self) -> list[dict[str, Any]]:
        """Long-poll for the first messages, then gather more for up to ``batching_window_s``."""
        batch: list[dict[str, Any]] = []
        window_ends: float | None = None  # like Lambda's window, it opens with the first record
        while len(batch) < self.batch_size and not self._stop.is_set():
            if window_ends is None:
                wait = self.wait_time_s
            else:
                remaining = window_ends - time.monotonic()
                if remaining <= 0:
                    break
                wait = min(self.wait_time_s, int(remaining))  # whole seconds; 0 is a short poll
            messages = self._sqs.receive_message(
                QueueUrl=self.stack.queue_url,
                MaxNumberOfMessages=min(_RECEIVE_LIMIT, self.batch_size - len(batch)),
                WaitTimeSeconds=wait,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages and not batch:
                return batch  # nothing to do: let the loop check stop / idle conditions
            if window_ends is None:
                window_ends = time.monotonic() + self.batching_window_s
            batch.extend(messages)
            if not messages and wait == 0:
                # A short poll found nothing: pause briefly instead of spinning until the window ends.
                time.sleep(min(0.05, max(0.0, window_ends - time.monotonic())))
        return batch

    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        records = [sqs_record(m, self.stack.queue_arn, self.stack.region) for m in messages]
        ids = [record["messageId"] for record in records]
        self.stats.received += len(records)
        self.stats.invocations += 1
        # Imported here, not at the top: functions' modules read their environment at import.
        from functions.observability import LocalLambdaContext

        context = LocalLambdaContext(
            function_name=self.function_name,
            memory_limit_in_mb=self.memory_mb,
            region=self.stack.region,
            timeout_s=self.stack.function_timeout_s,
        )
        started = time.monotonic()
        try:
            # After a failed init, Lambda runs the init again for the next invocation.
            handler = self._handler or self._load()
            response = handler({"Records": records}, context)
            failed = failed_message_ids(response, ids)
            problem = None if failed is not None else f"malformed batchItemFailures in {response!r:.300}"
        except Exception as exc:  # Lambda: an error from the function fails the whole batch
            if isinstance(exc, MemoryError) and self.oom_kills:
                os.kill(os.getpid(), signal.SIGKILL)  # Lambda's out-of-memory kill: the batch returns
            log.exception("handler raised; the whole batch of %d message(s) will be retried", len(records))
            failed, problem = None, f"handler raised {type(exc).__name__}: {exc}"
        elapsed = time.monotonic() - started
        if elapsed > self.stack.function_timeout_s:
            self.stats.timeouts += 1
            failed, problem = (
                None,
                f"invocation took {elapsed:.1f}s, over the {self.stack.function_timeout_s}s timeout",
            )
        if failed is None:
            failed = set(ids)
            self.stats.failed_batches += 1
            self.stats.errors.append(problem)
        else:
            self.stats.reported_failures += len(failed)
        self._delete([m for m in messages if m["MessageId"] not in failed])
        if self.observer is not None:
            self.observer(records, failed)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), _RECEIVE_LIMIT):
            chunk = messages[start : start + _RECEIVE_LIMIT]
            response = self._sqs.delete_message_batch(
                QueueUrl=self.stack.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            self.stats.deleted += len(response.get("Successful", []))
            for failure in response.get("Failed", []):
                # The message will come back after its visibility timeout; the function's
                # conditional write makes the second delivery harmless.
                log.warning("could not delete message: %s", failure)

    def _queue_is_empty(self) -> bool:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.stack.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]) == 0
            and int(attributes["ApproximateNumberOfMessagesNotVisible"]) == 0
        )


def _queue_client(stack: LocalStack, environment: Mapping[str, str]) -> Any:
    if not environment.get("AWS_ACCESS_KEY_ID"):
        return stack.client("sqs")  # no role given: the local admin
    import boto3

    return boto3.session.Session(
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=environment.get("AWS_SESSION_TOKEN"),
        region_name=stack.region,
    ).client("sqs", endpoint_url=stack.endpoint_url)
