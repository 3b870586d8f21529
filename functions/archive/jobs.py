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
        # A named model answers for the regions of a camera; running it on whole frames would
        # write wrong answers. Refused until the job path runs a named model on its regions.
        raise JobArgumentsError(
            f"the job asks for version {arguments.model_version} of the named model {arguments.model_name}: "
            "this function runs job models on the whole frame only (the default model)"
        )
    live_version = app.model.manifest.model_version
    if arguments.model_version in (None, live_version):
        if arguments.model_sha256 and arguments.model_sha256 != app.model.sha256:
            raise JobArgumentsError(
                f"the job pins modelSha256={arguments.model_sha256} for the live model version "
                f"{live_version}, whose sha256 is {app.model.sha256}; create the job again"
            )
        return app
    if not (arguments.model_uri and arguments.model_sha256):
        raise JobArgumentsError(
            f"the job asks for model version {arguments.model_version}, the function runs "
            f"{live_version}: userArguments need {MODEL_URI} and {MODEL_SHA256} for another version"
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
    return replace(
        app,
        model=model,
        result_model_version=arguments.model_version,
        # Tags carry the live label; another version's answer lives only in its result item.
        settings=replace(app.settings, write_tags=False),
    )
