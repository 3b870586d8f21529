"""S3 Batch Operations jobs: what a job's ``userArguments`` ask of the function.

A backfill job (``camsort backfill``) invokes the function with schema 2.0 events whose
``job.userArguments`` (CreateJob's ``UserArguments``, string -> string) say:

* ``mode``: ``classify`` (default) or ``featurize``;
* ``modelVersion``: the model the job is for. Absent, or equal to the live model's version
  (the one the function was deployed with): results are the live ones, keyed
  ``(object_id, object_version)`` exactly as from the S3 notification, so the audit, the
  camera index and the demo see them. Another version: ``modelUri`` (the artifact
  directory, local or ``s3://``) and ``modelSha256`` (its pin) are required; the function
  opens that model once per container and writes its results *beside* the live one (see
  :func:`functions.stores.results.result_sort_key`), without tags (the tags are the live label);
* ``modelName``: whose version ``modelVersion`` is (absent: ``default``). A named model's job
  re-answers, with that version, the regions of each frame's camera that the model answers, beside
  the live results (:func:`named_job_app`); a frame of a camera with no such region succeeds with
  a note and writes nothing;
* ``featuresUri`` (featurize only): ``s3://bucket/prefix/`` under which the shards go.

Pure parsing and a per-container model cache; no AWS calls besides opening a model.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from functions.errors import CamsortError, ModelNotPinnedError
from functions.frames.model import ModelSession
from functions.frames.regions import DEFAULT_MODEL
from functions.iam import requires
from functions.wiring import App

Mode = Literal["classify", "featurize"]
MODES: tuple[Mode, ...] = ("classify", "featurize")

# userArguments names (CreateJob caps each key at 64 and each value at 1024 characters).
MODE = "mode"
MODEL_VERSION = "modelVersion"
MODEL_URI = "modelUri"
MODEL_SHA256 = "modelSha256"
FEATURES_URI = "featuresUri"
MODEL_NAME = "modelName"  # a named model's version (models/<name>/<version>/); absent: default
KNOWN = frozenset({MODE, MODEL_VERSION, MODEL_URI, MODEL_SHA256, FEATURES_URI, MODEL_NAME, "reason"})


class JobArgumentsError(CamsortError):
    """The job's userArguments cannot be honoured: every task of it fails permanently."""


@dataclass(frozen=True)
class JobArguments:
    mode: Mode = "classify"
    model_version: str | None = None
    model_uri: str | None = None
    model_sha256: str | None = None
    features_uri: str | None = None
    model_name: str = DEFAULT_MODEL  # whose version model_version is

    def to_user_arguments(self) -> dict[str, str]:
        """The CreateJob ``UserArguments`` (and the local runner's) for these arguments."""
        values = {
            MODE: self.mode,
            MODEL_VERSION: self.model_version,
            MODEL_URI: self.model_uri,
            MODEL_SHA256: self.model_sha256,
            FEATURES_URI: self.features_uri,
            MODEL_NAME: None if self.model_name == DEFAULT_MODEL else self.model_name,
        }
        return {name: value for name, value in values.items() if value}


def parse_job_arguments(arguments: Mapping[str, str]) -> JobArguments:
    """Typed job arguments; ``JobArgumentsError`` naming the argument when one is wrong."""
    unknown = sorted(set(arguments) - KNOWN)
    if unknown:
        raise JobArgumentsError(
            f"userArguments {unknown} are not understood (known: {sorted(KNOWN)}); "
            "create the job with `camsort backfill`"
        )
    mode = arguments.get(MODE, "classify") or "classify"
    if mode not in MODES:
        raise JobArgumentsError(f"userArguments mode={mode!r}: expected one of {list(MODES)}")
    sha = arguments.get(MODEL_SHA256) or None
    if sha is not None and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
        raise JobArgumentsError(f"userArguments modelSha256={sha!r} is not a lower-case hex sha256")
    features_uri = arguments.get(FEATURES_URI) or None
    if mode == "featurize" and not (features_uri and features_uri.startswith("s3://")):
        raise JobArgumentsError(
            f"userArguments featuresUri={features_uri!r}: a featurize job needs s3://bucket/prefix/ for the shards"
        )
    return JobArguments(
        mode=mode,  # checked against MODES above
        model_version=arguments.get(MODEL_VERSION) or None,
        model_uri=arguments.get(MODEL_URI) or None,
        model_sha256=sha,
        features_uri=features_uri,
        model_name=arguments.get(MODEL_NAME) or DEFAULT_MODEL,
    )


ModelOpener = Callable[[str, str, App], ModelSession]

_models: dict[tuple[str, str], ModelSession] = {}
_models_lock = threading.Lock()


@requires("s3:GetObject", resource="job-models")
def open_job_model(uri: str, sha256: str, app: App) -> ModelSession:
    """Open another model artifact, pinned to the job's ``sha256``, with the live model's
    settings and its own cache directory. The pin is checked on the bytes before onnxruntime
    creates (and warms up) a session: another model is never loaded, let alone run."""
    digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
    return ModelSession.open(
        uri,
        s3_client=app.store.s3_client,
        cache_dir=f"{app.settings.model_cache_dir}-job-{digest}",
        threads=app.settings.onnx_threads,
        pinned_sha256=sha256,
    )


def job_app(app: App, arguments: JobArguments, open_model: ModelOpener = open_job_model) -> App:
    """The App a job's tasks run with: the live one, or one on the job's model version."""
    if arguments.model_name != DEFAULT_MODEL:
        return named_job_app(app, arguments, open_model)
    live_version = app.model.manifest.model_version
    if arguments.model_version in (None, live_version):
        if arguments.model_sha256 and arguments.model_sha256 != app.model.sha256:
            raise JobArgumentsError(
                f"the job pins modelSha256={arguments.model_sha256} for the live model version "
                f"{live_version}, whose sha256 is {app.model.sha256}; create the job again"
            )
        return app
    model = _job_model(app, arguments, open_model, f"the function runs {live_version}")
    return replace(
        app,
        model=model,
        result_model_version=arguments.model_version,
        # Tags carry the live label; another version's answer lives only in its result item.
        settings=replace(app.settings, write_tags=False),
    )


def named_job_app(app: App, arguments: JobArguments, open_model: ModelOpener = open_job_model) -> App:
    """A named model's job: the live App with that model replaced by the job's version, answering
    only the regions it answers (``App.regions_for``) and writing beside the live results at
    ``<object version>#<name>/<version>`` (:func:`functions.stores.results.result_sort_key`), whatever
    the version (the live one's answers are its regions' live items, written with their frames).

    Like another version of the default model: no tags, no review, no state or events
    (``result_model_version`` turns them off), and no shadow scoring (a candidate's answer goes
    on live items only)."""
    name = arguments.model_name
    if arguments.mode != "classify":  # features are the whole frame's, through the default model's backbone
        raise JobArgumentsError(
            f"the job asks to {arguments.mode} with the named model {name}: a named model's job classifies its regions"
        )
    if name not in app.named_models:
        raise JobArgumentsError(
            f"the job asks for version {arguments.model_version} of the named model {name}, which this "
            f"deployment does not carry (it has: {', '.join(sorted(app.models))}); a camera's regions can "
            f"only name a deployed model: deploy {name} (CAMSORT_NAMED_MODELS) first"
        )
    if not arguments.model_version:
        raise JobArgumentsError(f"the job names the model {name} but no {MODEL_VERSION}: add it")
    live = app.named_models[name]
    model = _job_model(app, arguments, open_model, f"the function runs {name} {live.manifest.model_version}")
    return replace(
        app,
        named_models={**app.named_models, name: model},
        result_model_version=arguments.model_version,
        result_model_name=name,
        settings=replace(app.settings, write_tags=False),
        shadow=None,
        named_shadows={},
    )


def _job_model(app: App, arguments: JobArguments, open_model: ModelOpener, running: str) -> ModelSession:
    """The job's model version, opened once per container (cached by uri and pin) and checked against
    the job: pinned by sha256 before any session is created, its manifest naming the job's version."""
    if not (arguments.model_uri and arguments.model_sha256):
        raise JobArgumentsError(
            f"the job asks for model version {arguments.model_version}, {running}: "
            f"userArguments need {MODEL_URI} and {MODEL_SHA256} for another version"
        )
    cache_key = (arguments.model_uri, arguments.model_sha256)
    with _models_lock:
        model = _models.get(cache_key)
        if model is None:
            try:
                model = open_model(arguments.model_uri, arguments.model_sha256, app)
            except ModelNotPinnedError as exc:  # refused before any session was created
                raise JobArgumentsError(
                    f"{arguments.model_uri}: model sha256 {exc.actual} is not the job's pin "
                    f"{arguments.model_sha256}; the artifact changed since the job was created"
                ) from exc
            if model.manifest.model_version != arguments.model_version:
                raise JobArgumentsError(
                    f"{arguments.model_uri}: manifest says model version {model.manifest.model_version}, "
                    f"the job asks for {arguments.model_version}"
                )
            _models[cache_key] = model
    return model
