"""The function's side of the local Lambda runtime: its environment, handler and output.

* :func:`function_environment`: the environment variables Lambda would give the function
  (CAMSORT_* settings, AWS_ENDPOINT_URL, the function role's credentials, region, model pin);
* :func:`environment_variables`: set them in os.environ for a run, as Lambda sets them;
* :func:`load_handler`: import the handler (``functions.handler.lambda_handler``);
* :func:`function_output`: attach the function's stdout and Powertools logger to a stream.

Used by the SQS worker (infra/local/worker.py), the batch runner, the soak, backfill and bench.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from functions import env
from functions.concurrency import IO_THREAD_PREFIX
from infra.deploy.topology import FUNCTION_MEMORY_MB, StackNames
from infra.local.iam import function_credentials
from infra.local.stack import LocalStack, pinned_sha256

DEFAULT_FUNCTION_NAME = "camsort-classify"
HANDLER = "functions.handler.lambda_handler"

Handler = Callable[[dict[str, Any], Any], Any]


def function_environment(
    stack: LocalStack,
    model_uri: str,
    *,
    endpoint_url: str | None = None,
    function_name: str = DEFAULT_FUNCTION_NAME,
    memory_mb: int = FUNCTION_MEMORY_MB,
    extra: Mapping[str, str] | None = None,
    role_template: Path | None = None,
    model_sha256: str | None = None,
    credentials: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment Lambda would give the function, pointed at the local endpoint.

    ``endpoint_url`` defaults to the stack's; a fault-injecting proxy passes its own here.
    The credentials are the function role's, as on Lambda: the role is created on the local
    stack from the packaged template's statements (``role_template``, or a fresh
    ``.serverless/`` one) or from infra/deploy/policy.py's derivation (infra/local/iam.py).
    ``credentials`` (AWS_ACCESS_KEY_ID, ...) skips creating the role: the caller has them.
    The model is pinned (CAMSORT_MODEL_SHA256) to ``model_sha256``, by default to what
    :func:`infra.local.stack.upload_model` uploaded at ``model_uri``.
    """
    pin = model_sha256 or pinned_sha256(model_uri) or uploaded_sha256(stack, model_uri)
    environment = {
        **(credentials or function_credentials(stack, model_uri, template=role_template)),
        "AWS_REGION": stack.region,
        "AWS_DEFAULT_REGION": stack.region,
        env.AWS_ENDPOINT_URL: endpoint_url or stack.endpoint_url,
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        env.MODEL_URI: model_uri,
        **stack_settings(stack.names),
        env.POWERTOOLS_SERVICE_NAME: "camsort",
        env.POWERTOOLS_METRICS_NAMESPACE: "camsort-local",
    }
    if pin:
        environment[env.MODEL_SHA256] = pin
    environment.update(extra or {})
    return environment


def uploaded_sha256(stack: LocalStack, model_uri: str) -> str | None:
    """The sha256 the manifest at ``model_uri`` records (a model this process did not upload,
    e.g. the demo's, which a later `camsort backfill` runs); None when there is no model there.

    The function refuses to start without a pin; locally the operator's own upload is the
    pin, as `camsort upload-model` prints it for a deploy.
    """
    import json

    from botocore.exceptions import BotoCoreError, ClientError

    from functions.frames.manifest import MANIFEST_FILENAME, read_manifest

    if not model_uri.startswith("s3://"):
        path = Path(model_uri)
        return read_manifest(path).model_sha256 if (path / MANIFEST_FILENAME).is_file() else None
    bucket, _, prefix = model_uri[len("s3://") :].partition("/")
    key = f"{prefix.rstrip('/')}/{MANIFEST_FILENAME}" if prefix else MANIFEST_FILENAME
    try:
        body = stack.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        return str(json.loads(body)["model_sha256"])
    except (ClientError, BotoCoreError, ValueError, KeyError):
        return None


def stack_settings(names: StackNames) -> dict[str, str]:
    """The CAMSORT_* variables that name a stack's resources, as serverless.yml sets them.

    CAMSORT_WRITE_TAGS is not among them: the function's default (off) applies, as it does for
    serverless.yml's default ``writeTags`` parameter.
    """
    return {
        env.RESULTS_TABLE: names.table,
        env.REVIEW_TABLE: names.review_table,
        env.STATE_TABLE: names.state_table,
        env.EVENT_BUS: names.event_bus,
        env.FRAMES_PREFIX: names.frames_prefix,
    }


@contextmanager
def environment_variables(values: Mapping[str, str]) -> Iterator[None]:
    """Set ``values`` in os.environ for the duration, then restore exactly what was there."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_handler(path: str = HANDLER) -> Handler:
    module_name, _, attribute = path.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


@contextmanager
def function_output(output: TextIO | None) -> Iterator[None]:
    """Attach the function's output (stdout, Powertools' logger) to ``output`` for the duration.

    Powertools' Logger is created once per process, with the stream that was stdout at
    import time, and keeps it. A second worker in the same process (or a run after an
    earlier worker's log file was closed) would then write to a stale, possibly closed
    stream (``ValueError: I/O operation on closed file``) and its logs would be lost. So
    every run points the logger's stream handlers at this run's output, whatever they
    held, and leaves them on this process's stdout when it ends.
    """
    from functions.observability import logger as function_logger

    original = sys.stdout
    stream: TextIO = original
    if output is not None:
        caller = threading.get_ident()

        def routes() -> bool:
            # The worker's thread and the function's own I/O pool (its state and health writes
            # log from there: before, their WARNING lines landed on the demo's live view).
            return threading.get_ident() == caller or threading.current_thread().name.startswith(
                IO_THREAD_PREFIX
            )

        stream = ThreadRoutedStream(original, output, routes)
    handlers = [h for h in function_logger.handlers if isinstance(h, logging.StreamHandler)]
    for handler in handlers:
        handler.setStream(stream)
    sys.stdout = stream
    try:
        yield
    finally:
        sys.stdout = original
        for handler in handlers:
            handler.setStream(original)


class ThreadRoutedStream:
    """A stdout stand-in: writes from the threads ``routes()`` picks go to ``target``, the others to
    ``default``. The function's threads write into their run's output while the rest of the
    process (progress bars, the caller) keeps its own."""

    def __init__(self, default: TextIO, target: TextIO, routes: Callable[[], bool]):
        self._default, self._target, self._routes = default, target, routes

    def _stream(self) -> TextIO:
        return self._target if self._routes() else self._default

    def write(self, text: str) -> int:
        return self._stream().write(text)

    def flush(self) -> None:
        self._stream().flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._default, name)
