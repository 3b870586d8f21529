"""Settings, AWS clients and the model session: built once per container.

Production path: ``default_app()`` (cached; the handler calls it at import time inside
Lambda's init phase, lazily at the first invocation elsewhere). Tests and the local worker
can build their own with ``build_app(settings, s3_client=..., dynamodb_client=...)`` and
``install_app(app)``.

boto3 honours ``AWS_ENDPOINT_URL``, so locally every client points at the moto server
without any code here knowing about it.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

from functions.classify import App
from functions.concurrency import IO_WORKERS, io_pool
from functions.cpu import int8_family_warning, int8_kernel_family
from functions.model import ModelSession
from functions.observability import logger
from functions.results import ResultsTable
from functions.settings import Settings, load_settings
from functions.storage import FrameStore

# Short connect timeout (an unreachable endpoint should fail fast and be retried by SQS),
# a read timeout that covers a 20 MB frame on a slow link, botocore's standard retry mode
# (exponential backoff with jitter, retries throttling/5xx/connection errors), and one pooled
# connection per I/O thread (functions.concurrency), so concurrent calls never queue for one.
CLIENT_CONFIG = Config(
    connect_timeout=3,
    read_timeout=20,
    retries={"mode": "standard", "max_attempts": 3},
    tcp_keepalive=True,
    max_pool_connections=IO_WORKERS,
)

_lock = threading.Lock()
_app: App | None = None


def make_clients(
    config: Config = CLIENT_CONFIG, session: boto3.session.Session | None = None
) -> tuple[Any, Any]:
    """(s3, dynamodb) clients; region, credentials and endpoint come from the environment."""
    session = session or boto3.session.Session()
    return session.client("s3", config=config), session.client("dynamodb", config=config)


def build_app(
    settings: Settings,
    *,
    s3_client: Any,
    dynamodb_client: Any,
    model: ModelSession | None = None,
) -> App:
    """Everything the classifier needs; opens the model unless one is given."""
    if model is None:
        model = ModelSession.open(
            settings.model_uri,
            s3_client=s3_client,
            cache_dir=settings.model_cache_dir,
            threads=settings.onnx_threads,
        )
    warn_if_int8_kernels_differ(model)
    return App(
        settings=settings,
        store=FrameStore(s3_client),
        table=ResultsTable(settings.results_table, dynamodb_client),
        model=model,
    )


def warn_if_int8_kernels_differ(model: ModelSession) -> str | None:
    """Log (and return) the cold-start warning of :func:`functions.cpu.int8_family_warning`."""
    manifest = model.manifest
    if manifest.precision != "int8":
        return None
    warning = int8_family_warning(manifest.int8_kernels, int8_kernel_family())
    if warning:
        logger.warning(warning, extra={"int8_kernels_trained": manifest.int8_kernels})
    return warning


def default_app() -> App:
    """The container's app, built from the environment on first use and then reused."""
    global _app
    if _app is None:
        with _lock:
            if _app is None:
                _app = _build_from_environment()
    return _app


def _build_from_environment() -> App:
    """Cold start, overlapped: the model loads (S3 download, sha256, onnxruntime session: I/O
    and C++ that release the GIL) on the I/O pool while botocore builds the DynamoDB client
    (parsing its service model, pure Python). Same result as ``make_clients`` + ``build_app``."""
    settings = load_settings()
    session = boto3.session.Session()
    s3_client = session.client("s3", config=CLIENT_CONFIG)
    loading = io_pool().submit(
        ModelSession.open,
        settings.model_uri,
        s3_client=s3_client,
        cache_dir=settings.model_cache_dir,
        threads=settings.onnx_threads,
    )
    try:
        dynamodb_client = session.client("dynamodb", config=CLIENT_CONFIG)
    finally:
        model = loading.result()  # raises the model's error, if any, before anything else
    return build_app(settings, s3_client=s3_client, dynamodb_client=dynamodb_client, model=model)


def install_app(app: App | None) -> App | None:
    """Replace the container's app (None: rebuild from the environment on next use)."""
    global _app
    with _lock:
        previous, _app = _app, app
    return previous
