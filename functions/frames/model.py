"""The model, loaded once per container: ``ModelSession.open(uri)`` then ``.predict(images)``.

``uri`` is a local model directory or ``s3://bucket/prefix/`` holding ``model.onnx`` and
``manifest.json``. An S3 artifact is downloaded once into ``cache_dir`` (atomically: a
half-written file never looks like a model). The sha256 in the manifest is checked before
onnxruntime sees the file, and the graph's inputs/outputs are checked against the manifest
and the contract names.

onnxruntime settings, and why:

* ``intra_op_num_threads`` = the CPUs this process may use (``os.sched_getaffinity``, not
  ``os.cpu_count()``, which counts the host's CPUs inside a container), overridable with
  CAMSORT_ONNX_THREADS (read by ``functions.settings``, passed in as ``threads``). ``inter_op_num_threads=1`` and sequential execution: a ResNet is
  one chain of ops, parallel branches buy nothing.
* graph optimisation ALL at load: it adds the layout transforms for the CPU the session runs
  on (NCHWc convolutions on x86). Measured on this project's 2-core EPYC, batch 10: int8
  23.0 -> 16.0 ms per frame with identical outputs, fp32 61.1 -> 41.9 ms with features within
  1.1e-5 (of values up to 36) and identical probabilities; session load -0.03 s (int8) /
  +0.11 s (fp32). Training featurizes with these same options, so the trees see the function's
  features. Models are still never *saved* at ALL (such a file is rewritten for the CPU that
  saved it): the optimisation happens at load, on the CPU that runs it.
* one warm-up run at load, so the first frame does not pay for kernel selection.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from functions import env
from functions.errors import ModelArtifactError, ModelIntegrityError, ModelNotPinnedError
from functions.frames.manifest import (
    FEATURE_SIZE,
    FEATURES_OUTPUT,
    MANIFEST_FILENAME,
    MODEL_FILENAME,
    PROBABILITIES_OUTPUT,
    Manifest,
    load_verified,
)
from functions.iam import requires

_ORT_TYPES = {"uint8": "tensor(uint8)", "float32": "tensor(float)"}


def available_cpus() -> int:
    """CPUs this process may run on (cgroup/affinity aware on Linux)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def resolve_threads(threads: int | None = None) -> int:
    """``threads`` (Settings.onnx_threads: CAMSORT_ONNX_THREADS, read once, by Settings), else the CPUs."""
    return threads or available_cpus()


# boto3's download_file sends HeadObject (checked as s3:GetObject) then GetObject.
@requires("s3:GetObject", resource="model")
def fetch_model(
    uri: str, *, s3_client: Any = None, cache_dir: str | Path = env.DEFAULT_MODEL_CACHE_DIR
) -> Path:
    """Local directory for ``uri``; an ``s3://`` artifact is downloaded once into ``cache_dir``."""
    if not uri.startswith("s3://"):
        path = Path(uri)
        if not path.is_dir():
            raise ModelArtifactError(
                f"{uri}: not a directory; point the model URI at a directory holding {MODEL_FILENAME}"
            )
        return path
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ModelArtifactError(f"{uri}: no bucket; write it as s3://bucket/prefix/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    if s3_client is None:
        raise ModelArtifactError(f"{uri}: an S3 model URI needs an S3 client")
    # One cache directory per URI, so two models never share files.
    target = Path(cache_dir) / hashlib.sha256(uri.encode()).hexdigest()[:16]
    target.mkdir(parents=True, exist_ok=True)
    # The manifest goes last: its presence marks a complete download.
    for name in (MODEL_FILENAME, MANIFEST_FILENAME):
        destination = target / name
        if destination.is_file() and (target / MANIFEST_FILENAME).is_file():
            continue
        _download_atomically(s3_client, bucket, prefix + name, destination)
    return target


def _download_atomically(s3_client: Any, bucket: str, key: str, destination: Path) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
    os.close(handle)
    try:
        s3_client.download_file(bucket, key, temporary)
        os.replace(temporary, destination)
    except (ClientError, BotoCoreError) as exc:
        raise ModelArtifactError(
            f"s3://{bucket}/{key}: cannot download the model ({exc}); upload model.onnx and manifest.json "
            "under the model prefix and grant s3:GetObject"
        ) from exc
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def session_options(
    threads: int,
    *,
    optimization: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    allow_spinning: bool | None = None,
) -> ort.SessionOptions:
    """The function's onnxruntime settings (see the module docstring): everything that runs
    the shipped graphs (the function, training's featurization, the bench) uses these, so the
    features the trees are trained on come from the same kernels as in production.

    ``optimization`` and ``allow_spinning`` are for the bench's option sweep; the defaults are
    the function's (``allow_spinning`` None: onnxruntime's default, worker threads spin briefly
    after a parallel section before sleeping).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = optimization
    if allow_spinning is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if allow_spinning else "0")
    return options


@dataclass(frozen=True)
class ModelSession:
    session: ort.InferenceSession
    manifest: Manifest
    model_path: Path
    threads: int

    @property
    def sha256(self) -> str:
        return self.manifest.model_sha256

    @property
    def labels(self) -> list[str]:
        return list(self.manifest.labels)

    @classmethod
    def open(
        cls,
        uri: str,
        *,
        s3_client: Any = None,
        cache_dir: str | Path = env.DEFAULT_MODEL_CACHE_DIR,
        threads: int | None = None,
        pinned_sha256: str | None = None,
        pin_source: str = env.MODEL_SHA256,
    ) -> ModelSession:
        """``pinned_sha256``: the only model.onnx this deployment may run (None: not pinned);
        ``pin_source`` names where the pin came from in the refusal (a named model's: CAMSORT_NAMED_MODELS)."""
        model_dir = fetch_model(uri, s3_client=s3_client, cache_dir=cache_dir)
        try:
            model_path, manifest = load_verified(model_dir)  # refuses a sha256 mismatch
            # load_verified proved model.onnx hashes to the manifest's sha256; the manifest is
            # as writable as the model, so only the deployment's pin says which model may run.
            if pinned_sha256 is not None and manifest.model_sha256 != pinned_sha256.lower():
                raise ModelNotPinnedError(
                    f"{uri}: model.onnx has sha256 {manifest.model_sha256}, but this deployment pins "
                    f"{pinned_sha256} ({pin_source}); nothing is classified with it. Upload the "
                    "pinned model again, or deploy the new one with its sha256 (camsort upload-model)",
                    actual=manifest.model_sha256,
                    pinned=pinned_sha256.lower(),
                )
        except ModelIntegrityError:
            if uri.startswith("s3://"):  # drop the refused download: the next init fetches again
                for name in (MANIFEST_FILENAME, MODEL_FILENAME):
                    (model_dir / name).unlink(missing_ok=True)
            raise
        resolved = resolve_threads(threads)
        options = session_options(resolved)
        try:
            session = ort.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelArtifactError(
                f"{model_path}: onnxruntime cannot load it ({exc}); re-export the model"
            ) from exc
        model = cls(session=session, manifest=manifest, model_path=model_path, threads=resolved)
        model.validate()
        spec = manifest.input
        model.predict(np.zeros((1, spec.height, spec.width, spec.channels), dtype=np.uint8))  # warm-up
        return model

    def validate(self) -> None:
        """The graph must match the manifest's input spec and the contract's output names."""
        spec, where = self.manifest.input, self.model_path
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        problems = []
        if list(inputs) != [spec.name]:
            problems.append(f"inputs {list(inputs)} should be exactly [{spec.name!r}]")
        else:
            image = inputs[spec.name]
            if image.type != _ORT_TYPES.get(spec.dtype):
                problems.append(f"input {spec.name!r} is {image.type}, manifest says {spec.dtype}")
            if not _shape_matches(image.shape, [None, spec.height, spec.width, spec.channels]):
                problems.append(
                    f"input {spec.name!r} shape {image.shape} is not [N, {spec.height}, {spec.width}, {spec.channels}]"
                )
        expected = {
            PROBABILITIES_OUTPUT: [None, len(self.manifest.labels)],
            FEATURES_OUTPUT: [None, FEATURE_SIZE],
        }
        for name, shape in expected.items():
            if name not in outputs:
                problems.append(f"output {name!r} is missing (outputs: {list(outputs)})")
                continue
            if outputs[name].type != "tensor(float)":
                problems.append(f"output {name!r} is {outputs[name].type}, not float32")
            if not _shape_matches(outputs[name].shape, shape):
                problems.append(f"output {name!r} shape {outputs[name].shape} is not {['N', *shape[1:]]}")
        if problems:
            raise ModelArtifactError(f"{where}: does not match its manifest: " + "; ".join(problems))

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 [N, H, W, 3] -> (probabilities float32 [N, C], features float32 [N, 2048])."""
        spec = self.manifest.input
        if (
            images.dtype != np.uint8
            or images.ndim != 4
            or images.shape[1:] != (spec.height, spec.width, spec.channels)
        ):
            raise ValueError(
                f"images must be uint8 [N, {spec.height}, {spec.width}, {spec.channels}], "
                f"got {images.dtype} {list(images.shape)}"
            )
        if not images.flags.c_contiguous:  # onnxruntime would copy anyway; make it explicit
            images = np.ascontiguousarray(images)
        probabilities, features = self.session.run(
            [PROBABILITIES_OUTPUT, FEATURES_OUTPUT], {spec.name: images}
        )
        count = images.shape[0]
        if probabilities.shape != (count, len(self.manifest.labels)) or features.shape != (
            count,
            FEATURE_SIZE,
        ):
            raise ModelArtifactError(
                f"{self.model_path}: returned probabilities {probabilities.shape} / features {features.shape} "
                f"for {count} images; re-export the model"
            )
        return probabilities, features


def _shape_matches(actual: list[Any], expected: list[int | None]) -> bool:
    """Symbolic or unknown dims (str / None) match anything; fixed dims must be equal."""
    if len(actual) != len(expected):
        return False
    return all(
        want is None or not isinstance(have, int) or have == want
        for have, want in zip(actual, expected, strict=True)
    )
