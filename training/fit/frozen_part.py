"""The frozen part of fine-tuning: the ResNet50 up to the split, run once per frame and view, cached.

The cache is keyed like the feature cache: content sha256 x the backbone's weights and seed x
the split x the augmentation recipe x the view (x the Keras version).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from training.fit.augment import Augmentation, augmented_view
from training.fit.finetune_net import STAGE_INPUTS

ACTIVATION_CACHE_VERSION = 1


def preprocess(pixels: np.ndarray) -> np.ndarray:
    """uint8 RGB -> the ResNet50's input (caffe preprocessing, as inside the exported graph)."""
    import keras

    return keras.applications.resnet50.preprocess_input(pixels.astype(np.float32))


def frozen_activations(
    keras_model,
    pixels: np.ndarray,
    sha256s: list[str],
    *,
    from_stage: str,
    views: int,
    backbone_key: str,
    augmentation: Augmentation,
    seed: int,
    cache_dir: Path,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 16,
) -> np.ndarray:
    """float16 [views, N, h, w, c]: the frozen part's output for each frame and view, cached."""
    import keras

    boundary = keras_model.get_layer(STAGE_INPUTS[from_stage]).output
    frozen = keras.Model(keras_model.input, boundary)
    folder = cache_dir / "activations"
    folder.mkdir(parents=True, exist_ok=True)
    out = np.zeros((views, len(pixels), *boundary.shape[1:]), dtype=np.float16)
    todo: list[tuple[int, int, Path]] = []
    for view in range(views):
        for i, sha in enumerate(sha256s):
            path = folder / f"{_cache_key(sha, backbone_key, from_stage, augmentation, seed, view)}.npy"
            if path.is_file():
                out[view, i] = np.load(path)
            else:
                todo.append((view, i, path))
    done = len(sha256s) * views - len(todo)
    for start in range(0, len(todo), batch_size):
        chunk = todo[start : start + batch_size]
        batch = np.stack(
            [
                augmented_view(
                    pixels[i], seed=_frame_seed(sha256s[i], seed), view=v, augmentation=augmentation
                )
                for v, i, _ in chunk
            ]
        )
        values = frozen.predict(preprocess(batch), batch_size=batch_size, verbose=0).astype(np.float16)
        for (view, i, path), value in zip(chunk, values, strict=True):
            out[view, i] = value
            staged = path.with_suffix(".tmp.npy")
            np.save(staged, value)
            staged.replace(path)
        done += len(chunk)
        if progress:
            progress(done, len(sha256s) * views)
    return out


def _frame_seed(sha256: str, seed: int) -> int:
    # The views of a frame follow its content, not its position in the listing.
    return int(sha256[:8], 16) ^ seed


def _cache_key(
    sha: str, backbone_key: str, stage: str, augmentation: Augmentation, seed: int, view: int
) -> str:
    import keras

    recipe = f"v{ACTIVATION_CACHE_VERSION}|{sha}|{backbone_key}|{stage}|{augmentation.key()}|{seed}|{view}|keras {keras.__version__}"
    return hashlib.sha256(recipe.encode()).hexdigest()
