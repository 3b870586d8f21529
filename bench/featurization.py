"""Training featurization throughput: (a) Keras ``predict`` vs (b)/(c) onnxruntime."""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

import numpy as np

from bench import stats
from bench.config import (
    BenchConfig,
)
from bench.inputs import training_files


def reference_featurization(config: BenchConfig, train_root: Path, reference_dir: Path) -> float:
    """(a): the training frames through Keras ``predict`` (batch ``featurize_batch``, after a
    warm-up batch); trains the notebook's Booster on those features. Returns frames/s through
    the backbone (decode excluded, as for (b) and (c))."""
    from bench.reference import decode_like_notebook, keras_predict_features, save_reference, train_booster
    from training.features.backbone import keras_backbone

    files = training_files(train_root)
    labels = sorted({label for _, label in files})
    pixels = np.stack([decode_like_notebook(path.read_bytes()) for path, _ in files])
    model = keras_backbone(config.weights, config.seed)  # the one training built, if any
    keras_predict_features(model, pixels[: config.featurize_batch])  # warm-up: graph tracing
    start = time.perf_counter()
    features = np.concatenate(
        [
            keras_predict_features(model, pixels[i : i + config.featurize_batch])
            for i in range(0, len(pixels), config.featurize_batch)
        ]
    )
    seconds = time.perf_counter() - start
    label_ids = np.array([labels.index(label) for _, label in files])
    save_reference(reference_dir, train_booster(features, label_ids, len(labels), seed=config.seed), labels)
    return stats.throughput(len(pixels), seconds)


def onnx_featurization(config: BenchConfig, backbone_path: Path, pixels: np.ndarray) -> dict[str, float]:
    """(b)/(c): the training frames through the backbone with onnxruntime.

    ``steady_fps``: the backbone alone at batch ``featurize_batch`` after a warm-up batch,
    with the session options training uses (comparable with (a)'s Keras figure);
    ``end_to_end_fps``: ``training.features.featurize.featurize`` itself on a fresh cache (session
    creation and cache writes included), what a first training run sees.
    """
    import onnxruntime as ort

    from functions.frames.manifest import FEATURES_OUTPUT, INPUT_NAME
    from functions.frames.model import available_cpus, session_options
    from training.features.featurize import featurize

    session = ort.InferenceSession(
        str(backbone_path), session_options(available_cpus()), providers=["CPUExecutionProvider"]
    )
    batches = [pixels[i : i + config.featurize_batch] for i in range(0, len(pixels), config.featurize_batch)]
    session.run([FEATURES_OUTPUT], {INPUT_NAME: batches[0]})  # warm-up: kernel selection, allocations
    start = time.perf_counter()
    for batch in batches:
        session.run([FEATURES_OUTPUT], {INPUT_NAME: np.ascontiguousarray(batch)})
    steady = stats.throughput(len(pixels), time.perf_counter() - start)
    del session

    sha256s = [hashlib.sha256(p.tobytes()).hexdigest() for p in pixels]
    with tempfile.TemporaryDirectory(prefix="bench-featurize-") as cache:
        start = time.perf_counter()
        featurize(
            pixels,
            sha256s,
            backbone_path,
            cache_dir=Path(cache),
            batch_size=config.featurize_batch,
            progress=False,
        )
        end_to_end = stats.throughput(len(pixels), time.perf_counter() - start)
    return {"steady_fps": steady, "end_to_end_fps": end_to_end}
