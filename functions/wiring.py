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
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

from functions.camera_state import CameraStates
from functions.event_bus import EventPublisher
from functions.model import ModelSession, fetch_model
from functions.results import ResultsTable
from functions.settings import Settings, load_settings
from functions.smoothing import SmoothingConfig
from functions.storage import FrameStore

# Short connect timeout (an unreachable endpoint should fail fast and be retried by SQS),
# a read timeout that covers a 20 MB frame on a slow link, botocore's standard retry mode
# (exponential backoff with jitter, retries throttling/5xx/connection errors).
CLIENT_CONFIG = Config(
    connect_timeout=3,
    read_timeout=20,
    retries={"mode": "standard", "max_attempts": 3},
    tcp_keepalive=True,
)

# Everything the app calls AWS through. The function's IAM statements are derived from the
# ``@requires`` declarations on these (infra/policy.py); an adapter added to build_app
# belongs here too, or the deployed role (and the local principal) will refuse its calls.
AWS_USERS: tuple[object, ...] = (FrameStore, ResultsTable, fetch_model, CameraStates, EventPublisher)


@dataclass
class App:
    """What the classifier needs; built once per container by :func:`build_app`."""

    settings: Settings
    store: FrameStore
    table: ResultsTable
    model: ModelSession
    clock: Callable[[], float] = time.perf_counter
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    camera_state: CameraStates | None = None  # None: the stage keeps no camera state


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
    events_client: Any = None,
) -> App:
    """Everything the classifier needs; opens the model unless one is given.

    Camera state is on when the stage names a state table; events are published when it also
    names a bus (an EventBridge client is created for it unless one is given).
    """
    if model is None:
        model = ModelSession.open(
            settings.model_uri,
            s3_client=s3_client,
            cache_dir=settings.model_cache_dir,
            threads=settings.onnx_threads,
            pinned_sha256=settings.model_sha256,
        )
    camera_state = None
    if settings.state_table:
        publisher = None
        if settings.event_bus:
            events_client = events_client or boto3.session.Session().client("events", config=CLIENT_CONFIG)
            publisher = EventPublisher(settings.event_bus, events_client)
        smoothing = settings.smoothing or SmoothingConfig()
        camera_state = CameraStates(settings.state_table, dynamodb_client, smoothing, publisher)
    return App(
        settings=settings,
        store=FrameStore(s3_client),
        table=ResultsTable(settings.results_table, dynamodb_client),
        model=model,
        camera_state=camera_state,
    )


def default_app() -> App:
    """The container's app, built from the environment on first use and then reused."""
    global _app
    if _app is None:
        with _lock:
            if _app is None:
                s3_client, dynamodb_client = make_clients()
                _app = build_app(load_settings(), s3_client=s3_client, dynamodb_client=dynamodb_client)
    return _app


def install_app(app: App | None) -> App | None:
    """Replace the container's app (None: rebuild from the environment on next use)."""
    global _app
    with _lock:
        previous, _app = _app, app
    return previous
