"""A local S3 Batch Operations LambdaInvoke job: moto has no Batch Operations jobs, so this runs them.

Like AWS: reads the CSV manifest from S3; one task per invocation, schema 2.0 events
(``invocationSchemaVersion``, ``invocationId``, ``job.id``, ``job.userArguments``, ``tasks``
with ``s3Bucket``/``s3Key`` (URL-encoded, as in the manifest)/``s3VersionId``); checks that the
response names the invocation and the task; ``TemporaryFailure`` is retried, ``Succeeded`` and
``PermanentFailure`` are final, a function error or a malformed response fails the task; writes
the completion report (:mod:`infra.local.batch_report`) for all or only the failed tasks.

Differs from AWS, plainly:

* invocations run in threads of this process (``concurrency`` of them) through the handler
  imported here, not in separate Lambda containers behind the Invoke API: no payload size
  limit, no Lambda throttling, no per-invocation timeout;
* TemporaryFailure is retried ``max_attempts`` times in total with a fixed pause (AWS retries
  with its own, undocumented schedule);
* no job states before Active (no confirmation step, no priority queue), no job-level failure
  threshold (AWS fails the job when over 50% of at least 1,000 tasks failed), no cancellation;
* the report's rows are in manifest order (AWS's are in completion order, split into shards).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import quote

from functions import env
from functions.iam import actions_by_resource, declared_permissions, requires
from infra.local.batch_report import (
    FAILED,
    SUCCEEDED,
    ManifestEntry,
    TaskResult,
    parse_manifest_csv,
    report_files,
)
from infra.local.function_env import (
    DEFAULT_FUNCTION_NAME,
    ThreadRoutedStream,
    environment_variables,
    load_handler,
)

Invoke = Callable[[dict[str, Any]], Any]
Progress = Callable[[int, int], None]  # (tasks done, tasks total)

SCHEMA_VERSION = "2.0"
TASK_THREAD_PREFIX = "batch-task"


@dataclass(frozen=True)
class LocalJob:
    manifest_bucket: str
    manifest_key: str
    report_bucket: str
    report_prefix: str
    user_arguments: dict[str, str] = field(default_factory=dict)
    failed_only: bool = False  # ReportScope FailedTasksOnly (else AllTasks)
    concurrency: int = 4
    max_attempts: int = 3
    retry_pause_s: float = 0.5
    job_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class LocalJobOutcome:
    job_id: str
    status: str  # Complete (AWS's job-level failure threshold is not modelled)
    total: int
    results: list[TaskResult]
    attempts: int  # invocations, retries included
    report_manifest_key: str | None

    @property
    def succeeded(self) -> int:
        return sum(r.status == SUCCEEDED for r in self.results)

    @property
    def failed(self) -> int:
        return sum(r.status == FAILED for r in self.results)


# The Batch Operations role's permissions: what this runner does in AWS's place (read the
# manifest, invoke the function, write the report). infra/deploy/policy.py derives the role from these.
@requires("lambda:InvokeFunction", resource="function")
@requires("s3:PutObject", resource="batch-reports")
@requires("s3:GetObject", "s3:GetObjectVersion", resource="batch-manifests")
def run_local_job(
    s3: Any, job: LocalJob, invoke: Invoke, progress: Progress | None = None
) -> LocalJobOutcome:
    """Run every task of the manifest through ``invoke`` and write the completion report."""
    source = f"s3://{job.manifest_bucket}/{job.manifest_key}"
    text = s3.get_object(Bucket=job.manifest_bucket, Key=job.manifest_key)["Body"].read().decode()
    entries = parse_manifest_csv(text, source)
    results: list[TaskResult | None] = [None] * len(entries)
    attempts = 0
    done = 0
    lock = threading.Lock()

    def run(index: int) -> None:
        nonlocal attempts, done
        result, tries = _run_task(job, index, entries[index], invoke)
        with lock:
            results[index] = result
            attempts += tries
            done += 1
            if progress:
                progress(done, len(entries))

    with ThreadPoolExecutor(
        max_workers=max(1, job.concurrency), thread_name_prefix=TASK_THREAD_PREFIX
    ) as pool:
        for future in [pool.submit(run, i) for i in range(len(entries))]:
            future.result()
    final = [r for r in results if r is not None]
    files = report_files(job.job_id, job.report_bucket, job.report_prefix, final, failed_only=job.failed_only)
    manifest_key = None
    for key, body in files.items():
        s3.put_object(Bucket=job.report_bucket, Key=key, Body=body)
        if key.endswith("/manifest.json") or key == "manifest.json":
            manifest_key = key
    return LocalJobOutcome(job.job_id, "Complete", len(entries), final, attempts, manifest_key)


@contextmanager
def local_function(
    environment: Mapping[str, str],
    *,
    function_name: str = DEFAULT_FUNCTION_NAME,
    timeout_s: float = 900.0,
    function_output: TextIO | None = None,
) -> Iterator[Invoke]:
    """The function as Lambda would run it (environment set, init phase done): an ``invoke``.

    ``function_output``: where the function's logs and metrics go (CloudWatch's place), so that
    they do not mix with the command's own output; None leaves them on stdout.
    """
    from functions import wiring
    from functions.observability import LocalLambdaContext

    region = environment.get("AWS_REGION", "us-east-1")
    # The init phase's logs (in this thread) are the function's too, as Lambda's go to CloudWatch.
    initialising = True

    def routes() -> bool:
        return initialising or threading.current_thread().name.startswith(TASK_THREAD_PREFIX)

    service = environment.get(env.POWERTOOLS_SERVICE_NAME, "camsort")
    with environment_variables(environment), routed_output(function_output, service, routes):
        wiring.install_app(None)
        handler = load_handler()
        wiring.default_app()
        initialising = False
        try:
            yield lambda event: handler(
                event,
                LocalLambdaContext(function_name=function_name, region=region, timeout_s=timeout_s),
            )
        finally:
            wiring.install_app(None)


@contextmanager
def routed_output(
    target: TextIO | None, service: str = "camsort", routes: Callable[[], bool] = lambda: True
) -> Iterator[None]:
    """stdout and the Powertools logger of ``service`` write to ``target`` while ``routes()`` is true
    (by default always: code of a function run in this process, e.g. the local compaction)."""
    if target is None:
        yield
        return
    original = sys.stdout
    routed = ThreadRoutedStream(original, target, routes)
    # Powertools' logger holds the stream it was created with; point it at the router too.
    handlers = [
        h
        for h in logging.getLogger(service).handlers
        if isinstance(h, logging.StreamHandler) and h.stream in (original, sys.__stdout__)
    ]
    previous = [h.setStream(routed) for h in handlers]
    sys.stdout = routed
    try:
        yield
    finally:
        sys.stdout = original
        for handler, stream in zip(handlers, previous, strict=True):
            handler.setStream(stream)


def task_event(job: LocalJob, index: int, attempt: int, entry: ManifestEntry) -> dict[str, Any]:
    """The schema 2.0 event AWS sends for one task (one task per invocation)."""
    return {
        "invocationSchemaVersion": SCHEMA_VERSION,
        "invocationId": f"{job.job_id}-{index}-{attempt}",
        "job": {"id": job.job_id, "userArguments": dict(job.user_arguments)},
        "tasks": [
            {
                "taskId": f"{job.job_id}-task-{index}",
                "s3Bucket": entry.bucket,
                "s3Key": quote(entry.key, safe="/"),
                "s3VersionId": entry.version_id,
            }
        ],
    }


def _run_task(job: LocalJob, index: int, entry: ManifestEntry, invoke: Invoke) -> tuple[TaskResult, int]:
    code, message, http = "TemporaryFailure", "", 200
    attempt = 0
    for attempt in range(1, job.max_attempts + 1):
        event = task_event(job, index, attempt, entry)
        try:
            response = invoke(event)
        except Exception as exc:  # the function raised: AWS reports the function error, fails the task
            code, message = "PermanentFailure", f"Lambda returned function error: {type(exc).__name__}: {exc}"
            break
        code, message = _task_result(response, event)
        if code != "TemporaryFailure":
            break
        if attempt < job.max_attempts and job.retry_pause_s:
            time.sleep(job.retry_pause_s)
    if code == "Succeeded":
        return TaskResult(entry.bucket, entry.key, entry.version_id, SUCCEEDED, "", http, message), attempt
    if code == "TemporaryFailure":
        message = f"{message} (retried {attempt} times)"
    return TaskResult(entry.bucket, entry.key, entry.version_id, FAILED, code, http, message), attempt


def _task_result(response: Any, event: dict[str, Any]) -> tuple[str, str]:
    task_id = event["tasks"][0]["taskId"]
    try:
        if response["invocationId"] != event["invocationId"]:
            raise ValueError(f"invocationId {response['invocationId']!r} is not {event['invocationId']!r}")
        (result,) = response["results"]
        if result["taskId"] != task_id:
            raise ValueError(f"taskId {result['taskId']!r} is not {task_id!r}")
        code = result["resultCode"]
        if code not in ("Succeeded", "TemporaryFailure", "PermanentFailure"):
            raise ValueError(f"resultCode {code!r}")
        return code, str(result.get("resultString") or "")
    except (KeyError, TypeError, ValueError) as exc:
        return "PermanentFailure", f"Lambda returned an invalid response: {exc}"


def batch_operations_permissions() -> dict[str, tuple[str, ...]]:
    """``{logical resource: actions}`` the S3 Batch Operations role needs: what a job does, as run here."""
    return actions_by_resource(declared_permissions(run_local_job))
