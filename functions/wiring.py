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
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config

from functions import env
from functions.concurrency import CLIENT_CONFIG, io_pool
from functions.cpu import int8_family_warning, int8_kernel_family
from functions.frames.decode_budget import MIB, DecodeBudget, budget_bytes, resident_bytes
from functions.frames.image_loader import load_regions
from functions.frames.model import ModelSession
from functions.frames.regions import DEFAULT_MODEL, WHOLE_FRAME, Box, CameraConfig
from functions.frames.shadow import ShadowScorer
from functions.iam import requires
from functions.observability import logger, metrics
from functions.settings import Settings, load_settings
from functions.state.camera_state import CameraStates
from functions.state.event_bus import EventPublisher
from functions.state.smoothing import SmoothingConfig
from functions.stores.camera_configs import CameraConfigObjects, CameraConfigs
from functions.stores.results import ResultsTable, result_sort_key
from functions.stores.review_queue import ReviewQueue
from functions.stores.storage import FrameStore


@dataclass
class App:
    """What the classifier needs; built once per container by :func:`build_app`."""

    settings: Settings
    store: FrameStore
    table: ResultsTable
    model: ModelSession
    clock: Callable[[], float] = time.perf_counter
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    # Where the network steps of one invocation overlap; shared by the whole container.
    pool: Executor = field(default_factory=io_pool)
    review: ReviewQueue | None = None  # None: no review marking
    shadow: ShadowScorer | None = None  # None: no shadow scoring
    # None: the live model, results keyed as usual. A version: a backfill job with another
    # model (functions.archive.jobs); results go beside the live one (results.result_sort_key).
    result_model_version: str | None = None
    # Whose version result_model_version is: a named model's job answers only its regions (jobs.py).
    result_model_name: str = DEFAULT_MODEL
    camera_state: CameraStates | None = None  # None: the stage keeps no camera state
    # The memory the frames of an invocation decode in, together (functions/frames/decode_budget.py).
    decode_budget: DecodeBudget | None = None  # None: no shared budget, the per-frame limit only
    # The deployment's named models besides default (CAMSORT_NAMED_MODELS), each pinned.
    named_models: dict[str, ModelSession] = field(default_factory=dict)
    # Cameras' regions (functions/stores/camera_configs.py); None: no camera has regions.
    camera_configs: CameraConfigs | None = None
    named_shadows: dict[str, ShadowScorer] = field(default_factory=dict)  # the named models' candidates

    def shadow_of(self, model_name: str) -> ShadowScorer | None:
        """The shadow candidate of one model (``default``: ``shadow``), if it has one."""
        return self.shadow if model_name == DEFAULT_MODEL else self.named_shadows.get(model_name)

    @property
    def models(self) -> dict[str, ModelSession]:
        """Every model a region may name: ``default`` (``model``, also a backfill job's) and the named ones."""
        return {DEFAULT_MODEL: self.model, **self.named_models}

    def regions_for(self, camera_id: str) -> CameraConfig:
        """The camera's configuration now (no regions when the stage has no configuration store);
        a named model's job: only the regions that model answers (possibly none)."""
        if self.camera_configs is None:
            return CameraConfig(camera_id, ())
        config = self.camera_configs.config_for(camera_id)
        if self.result_model_name == DEFAULT_MODEL:
            return config
        return replace(config, regions=tuple(r for r in config.regions if r.model == self.result_model_name))

    def result_key(self, object_version: str) -> str:
        """The sort key of this App's result for a frame version: the live one, or a job model version's."""
        return result_sort_key(object_version, self.result_model_version, self.result_model_name)

    def decode(self, data: bytes, source: str) -> Any:
        """The whole frame (``load_image``) with this deployment's limits, under the container's decode budget."""
        return self.decode_regions(data, source, [WHOLE_FRAME])[0]

    def decode_regions(self, data: bytes, source: str, boxes: list[Box]) -> list[Any]:
        """``load_regions`` (one decode, one crop per box) with the same limits and budget as :meth:`decode`."""
        settings = self.settings
        return load_regions(
            data,
            boxes,
            source=source,
            max_bytes=settings.max_bytes,
            max_pixels=settings.max_pixels,
            max_decode_bytes=settings.max_decode_mib * MIB,
            budget=self.decode_budget,
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
    events_client: Any = None,
    named_models: dict[str, ModelSession] | None = None,
) -> App:
    """Everything the classifier needs; opens the model (and the named ones) unless given.

    Camera state is on when the stage names a state table; events are published when it also
    names a bus (an EventBridge client is created for it unless one is given).
    """
    if model is None:
        model = open_live_model(settings, s3_client)
    if named_models is None:
        named_models = open_named_models(settings, s3_client)
    for each in (model, *named_models.values()):
        warn_if_int8_kernels_differ(each)
    camera_state = None
    if settings.state_table:
        publisher = None
        if settings.event_bus:
            events_client = events_client or boto3.session.Session().client("events", config=CLIENT_CONFIG)
            publisher = EventPublisher(settings.event_bus, events_client)
        smoothing = settings.smoothing or SmoothingConfig()
        camera_state = CameraStates(
            settings.state_table, dynamodb_client, smoothing, publisher, health=settings.health_config()
        )
    return App(
        settings=settings,
        store=FrameStore(s3_client),
        table=ResultsTable(settings.results_table, dynamodb_client),
        model=model,
        review=ReviewQueue(settings.review_table, dynamodb_client) if settings.review_table else None,
        shadow=open_candidate(settings, s3_client),
        camera_state=camera_state,
        decode_budget=container_decode_budget(settings, model, *named_models.values()),
        named_models=named_models,
        named_shadows=open_named_candidates(settings, s3_client),
        camera_configs=camera_configs(settings, s3_client, [DEFAULT_MODEL, *named_models]),
    )


def camera_configs(settings: Settings, s3_client: Any, model_names: list[str]) -> CameraConfigs | None:
    """The container's cache of cameras' regions, read from the model bucket; None without one."""
    if not settings.camera_config_bucket:
        return None
    objects = CameraConfigObjects(s3_client, settings.camera_config_bucket)
    return CameraConfigs(
        objects.fetch,
        ttl_seconds=settings.camera_config_ttl_seconds,
        known_models=model_names,
        source=objects.uri,
    )


def container_decode_budget(settings: Settings, *models: ModelSession) -> DecodeBudget:
    """Sized once the models are up: the function's memory minus what the container now holds."""
    paths = [getattr(model, "model_path", None) for model in models]  # a stand-in model may have no file
    total = budget_bytes(
        memory_mb=settings.memory_mb,
        resident_bytes=resident_bytes(),
        model_bytes=sum(path.stat().st_size for path in paths if path is not None and path.is_file()),
        per_frame_bytes=settings.max_decode_mib * MIB,
    )
    logger.info(
        f"decode budget {total >> 20} MiB for the frames of an invocation "
        f"(memory {settings.memory_mb} MB, per frame at most {settings.max_decode_mib} MiB)"
    )
    return DecodeBudget(total)


def open_live_model(settings: Settings, s3_client: Any) -> ModelSession:
    """The deployment's model: refused unless its sha256 is the pinned one (CAMSORT_MODEL_SHA256)."""
    return ModelSession.open(
        settings.model_uri,
        s3_client=s3_client,
        cache_dir=settings.model_cache_dir,
        threads=settings.onnx_threads,
        pinned_sha256=settings.model_sha256,
    )


# A named model's artifact is models/<name>/<version>/, which the job-models grant covers.
@requires("s3:GetObject", resource="job-models")
def open_named_models(settings: Settings, s3_client: Any) -> dict[str, ModelSession]:
    """Every named model, opened once per container by the very code that opens default (and pinned
    alike): one that fails to download, load or match its sha256 fails the cold start."""
    return {
        named.name: ModelSession.open(
            named.uri,
            s3_client=s3_client,
            cache_dir=settings.model_cache_dir,
            threads=settings.onnx_threads,
            pinned_sha256=named.sha256,
            pin_source=f"{env.NAMED_MODELS} {named.name}",
        )
        for named in settings.named_models or ()
    }


# The candidate is any model version's artifact (models/<version>/, a named model's
# models/<name>/<version>/), pinned by its sha256.
@requires("s3:GetObject", resource="job-models")
def open_candidate(
    settings: Settings,
    s3_client: Any,
    uri: str | None = None,
    sha256: str | None = None,
    model_name: str = DEFAULT_MODEL,
) -> ShadowScorer | None:
    """A shadow candidate (default's: the settings'; a named model's: ``uri``/``sha256``), opened once
    per container; None when there is none or it cannot run.

    A candidate that fails to download, to load or to match its pinned sha256 is logged and
    counted, and the container runs without shadow scoring: the live model is never held up.
    """
    if model_name == DEFAULT_MODEL:
        uri, sha256 = settings.candidate_model_uri, settings.candidate_model_sha256
    if not uri or settings.shadow_sample_rate <= 0:
        return None
    try:
        model = ModelSession.open(
            uri,
            s3_client=s3_client,
            cache_dir=settings.model_cache_dir,
            threads=settings.onnx_threads,
            pinned_sha256=sha256,
        )
    except Exception as exc:
        logger.error(f"shadow candidate of model {model_name} not loaded, its shadow scoring off: {exc}")
        metrics.add_metric(name="ShadowFailures", unit=MetricUnit.Count, value=1)
        return None
    logger.info(
        f"shadow candidate {model.manifest.model_version} ({model.sha256[:12]}) of model {model_name} loaded, "
        f"sample rate {settings.shadow_sample_rate}"
    )
    return ShadowScorer(model=model, sample_rate=settings.shadow_sample_rate)


def open_named_candidates(settings: Settings, s3_client: Any) -> dict[str, ShadowScorer]:
    """The named models' shadow candidates (CAMSORT_NAMED_MODELS' candidate_uri), by model name."""
    opened = {
        named.name: open_candidate(
            settings, s3_client, named.candidate_uri, named.candidate_sha256, named.name
        )
        for named in settings.named_models or ()
        if named.candidate_uri
    }
    return {name: scorer for name, scorer in opened.items() if scorer is not None}


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
    loading = io_pool().submit(open_live_model, settings, s3_client)
    named = io_pool().submit(open_named_models, settings, s3_client)
    try:
        dynamodb_client = session.client("dynamodb", config=CLIENT_CONFIG)
    finally:
        model = loading.result()  # raises the model's error, if any, before anything else
        named_models = named.result()
    return build_app(
        settings, s3_client=s3_client, dynamodb_client=dynamodb_client, model=model, named_models=named_models
    )


def install_app(app: App | None) -> App | None:
    """Replace the container's app (None: rebuild from the environment on next use)."""
    global _app
    with _lock:
        previous, _app = _app, app
    return previous
