"""Backbone features through onnxruntime, cached on disk.

Features come from the very ONNX backbone that will ship (fp32 or int8), run by onnxruntime
with the function's session options (``functions.frames.model.session_options``: graph optimisation
ALL, one inter-op thread, sequential execution), so the
trees are trained on what they will see in production. The level matters: on the fp32
backbone ALL differs from EXTENDED by ~1e-5 (NCHWc kernels), enough to flip a tree split;
on the int8 backbone BASIC differs from EXTENDED by ~0.5 (no fused integer kernels).

The cache key is (image content sha256, backbone file sha256, onnxruntime version and
optimisation level): one ``.npy`` per image under ``<cache_dir>/features/<backbone_sha256[:16]>-
ort<version>-<level>/<image_sha256[:2]>/<image_sha256>.npy``. A re-run featurizes only images it has not seen with
this backbone; a new backbone (other weights, seed, precision or tool versions) misses the
whole cache. Writes go to a temporary
name and are renamed into place, so an interrupted run never leaves a half-written entry; an
unreadable entry is featurized again.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from functions.errors import ModelArtifactError
from functions.frames.manifest import FEATURE_SIZE, FEATURES_OUTPUT, IMAGE_SIZE, INPUT_NAME, sha256_file


@dataclass(frozen=True)
class FeaturizeResult:
    features: np.ndarray  # float32 [N, 2048], in the order of the input images
    cache_hits: int  # images whose features came from the cache
    computed: int  # images run through the backbone (duplicates within a call run once)
    backbone_sha256: str


def featurize(
    pixels: np.ndarray,
    sha256s: list[str],
    backbone_path: Path | str,
    *,
    cache_dir: Path | str,
    batch_size: int = 16,
    progress: bool = True,
    threads: int | None = None,
) -> FeaturizeResult:
    """Features of ``pixels`` (uint8 [N,224,224,3]) from the backbone at ``backbone_path``.

    ``sha256s[i]`` identifies image ``i``'s content (the file's sha256, see
    ``training.data.dataset.LabeledImage``); ``threads`` caps onnxruntime's intra-op threads.
    """
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3):
        raise ValueError(
            f"featurize expects uint8 [N,{IMAGE_SIZE},{IMAGE_SIZE},3], got {pixels.dtype} {pixels.shape}"
        )
    if len(sha256s) != len(pixels):
        raise ValueError(f"{len(sha256s)} sha256s for {len(pixels)} images")
    backbone_path = Path(backbone_path)
    if not backbone_path.is_file():
        raise ModelArtifactError(
            f"backbone {backbone_path} does not exist: export it first (export.backbone)"
        )

    backbone_sha = sha256_file(backbone_path)
    import onnxruntime

    from functions.frames.model import session_options

    level = str(session_options(1).graph_optimization_level).rsplit("_", 1)[-1]  # EXTENDED | ALL
    store = Path(cache_dir) / "features" / f"{backbone_sha[:16]}-ort{onnxruntime.__version__}-{level}"
    features = np.empty((len(pixels), FEATURE_SIZE), dtype=np.float32)

    # First occurrence of each content hash: duplicates inside one call are featurized once.
    first_index: dict[str, int] = {}
    for i, sha in enumerate(sha256s):
        first_index.setdefault(sha, i)
    missing = []
    for sha, i in first_index.items():
        cached = _read_entry(store, sha)
        if cached is None:
            missing.append(i)
        else:
            features[i] = cached

    if missing:
        computed = _run_backbone(backbone_path, pixels[missing], batch_size, progress, threads)
        for i, row in zip(missing, computed, strict=True):
            features[i] = row
            _write_entry(store, sha256s[i], row)

    for i, sha in enumerate(sha256s):
        features[i] = features[first_index[sha]]
    return FeaturizeResult(
        features=features,
        cache_hits=len(pixels) - len(missing),
        computed=len(missing),
        backbone_sha256=backbone_sha,
    )


def _entry_path(store: Path, sha: str) -> Path:
    return store / sha[:2] / f"{sha}.npy"


def _read_entry(store: Path, sha: str) -> np.ndarray | None:
    path = _entry_path(store, sha)
    try:
        row = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # damaged entry (e.g. a disk filled up mid-write): featurize again
    if row.dtype != np.float32 or row.shape != (FEATURE_SIZE,):
        return None
    return row


def _write_entry(store: Path, sha: str, row: np.ndarray) -> None:
    path = _entry_path(store, sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name, renamed into place: concurrent runs and crashes never leave
    # a half-written entry under the final name.
    staged = path.with_name(f".{sha[:16]}-{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(staged, "wb") as handle:
            np.save(handle, np.ascontiguousarray(row, dtype=np.float32), allow_pickle=False)
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)


def _run_backbone(
    backbone_path: Path, pixels: np.ndarray, batch_size: int, progress: bool, threads: int | None
):
    import onnxruntime as ort

    from functions.frames.model import available_cpus, session_options

    # The function's own options (functions/frames/model.py); in memory only, nothing is saved.
    options = session_options(threads or available_cpus())
    session = ort.InferenceSession(str(backbone_path), options, providers=["CPUExecutionProvider"])
    input_names = [value.name for value in session.get_inputs()]
    output_names = [value.name for value in session.get_outputs()]
    if input_names != [INPUT_NAME] or FEATURES_OUTPUT not in output_names:
        raise ModelArtifactError(
            f"backbone {backbone_path}: inputs {input_names}, outputs {output_names}; expected input "
            f"{INPUT_NAME!r} and output {FEATURES_OUTPUT!r}: export it with export.backbone"
        )
    out = np.empty((len(pixels), FEATURE_SIZE), dtype=np.float32)
    starts = range(0, len(pixels), batch_size)
    if progress:
        from rich.progress import track

        starts = track(starts, description=f"featurizing {len(pixels)} image(s) with {backbone_path.name}")
    for start in starts:
        batch = np.ascontiguousarray(pixels[start : start + batch_size])
        (result,) = session.run([FEATURES_OUTPUT], {INPUT_NAME: batch})
        out[start : start + len(batch)] = result
    return out
