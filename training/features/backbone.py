"""Features from the frames themselves: backbones, features and near-duplicate groups.

The Keras ResNet50 for (weights, seed), built once per process; its fp32 ONNX backbone,
converted once and cached; unless fp32 is requested, the int8 backbone calibrated on a seeded
sample of the training frames; every frame's features through each backbone (cached per image);
near-duplicate groups, so no fold splits a frame from its copy. ``training.sources.Frames``
calls it, for the frozen backbone and again for a fine-tuned one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from functions import env
from training.features.featurize import featurize
from training.features.neardup import NearDuplicateGroups, dhash_groups
from training.features.precision import cached_int8_backbone, calibration_indices

BACKBONE_NAME = "ResNet50"
DEFAULT_CACHE_DIR = Path("~/.cache/camsort")

# Keras backbones built in this process, by (weights, seed): building a ResNet50 takes
# seconds to tens of seconds, and the parity gate needs the model every run.
_KERAS_BACKBONES: dict[tuple[str, int], Any] = {}


def default_cache_dir() -> Path:
    return Path(os.environ.get(env.CACHE_DIR) or DEFAULT_CACHE_DIR).expanduser()


def resolve_cache_dir(cache_dir: Path | str | None) -> Path:
    """The backbone + feature cache: ``cache_dir``, else $CAMSORT_CACHE_DIR or ~/.cache/camsort (created)."""
    resolved = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    resolved.mkdir(parents=True, exist_ok=True)
    return resolved


def keras_backbone(weights: str, seed: int = 0):
    """The Keras ResNet50 for (weights, seed), built once per process."""
    from export.backbone import build_keras_backbone

    key = (weights, seed)
    if key not in _KERAS_BACKBONES:
        _KERAS_BACKBONES[key] = build_keras_backbone(weights, seed=seed)
    return _KERAS_BACKBONES[key]


def _tuned_onnx(keras_model, path: Path, frozen: Path, progress: bool, step: Callable[[str], None]) -> Path:
    """The fine-tuned network's ONNX backbone: its weights in the frozen graph (export.tuned_backbone),
    or, when that graph cannot take them, a tf2onnx conversion in this process."""
    from export.backbone import export_backbone
    from export.tuned_backbone import TunedGraphMismatch, tuned_backbone

    try:
        tuned = tuned_backbone(frozen, keras_model, path)
        step(f"fine-tuned ResNet50 -> ONNX: its weights folded into the frozen graph ({path.name})")
        return tuned
    except TunedGraphMismatch as mismatch:
        step(f"fine-tuned ResNet50 -> ONNX (tf2onnx) at {path.name}: {mismatch}")
        return export_backbone(keras_model, path, progress=progress)


def keras_network(model, weights: str, seed: int):
    """``model`` when a stage already has the Keras network, else the one for (weights, seed)."""
    return model if model is not None else keras_backbone(weights, seed)


def share_keras_backbone(weights: str, seed: int, model) -> None:
    """Hand an already built backbone to training (tests: one ResNet50 build per session)."""
    _KERAS_BACKBONES[(weights, seed)] = model


@dataclass(frozen=True)
class BackboneFeatures:
    keras_model: Any  # the Keras network the fp32 backbone came from; None: (weights, seed)'s, not built yet
    backbones: dict[str, Path]  # precision -> ONNX backbone
    features: dict[str, np.ndarray]  # precision -> float32 [N, 2048]
    featurize_stats: dict[str, dict[str, int]]  # precision -> {"cache_hits", "computed"}
    groups: NearDuplicateGroups


def backbone_features(
    pixels: np.ndarray,
    sha256s: list[str],
    *,
    weights: str,
    weights_label: str,
    seed: int,
    precision: str,
    calibration_size: int,
    cache_dir: Path,
    progress: bool,
    step: Callable[[str], None],
    tuned: tuple[Any, Path] | None = None,
) -> BackboneFeatures:
    """``tuned``: (the fine-tuned Keras backbone, where to export it, the frozen fp32 ONNX backbone
    it was tuned from) instead of (weights, seed)'s."""
    from export.backbone import cached_backbone

    if tuned is None:
        step(f"ResNet50 backbone (weights {weights_label}, seed {seed})")
        # Not built here: the conversion (on a cache miss) runs in a child process while this one
        # holds no TensorFlow; the stages that need the Keras network build it (keras_network).
        keras_model = _KERAS_BACKBONES.get((weights, seed))
        backbones = {
            "fp32": cached_backbone(weights, cache_dir, seed=seed, model=keras_model, progress=progress)
        }
    else:
        keras_model, path, frozen = tuned
        backbones = {
            "fp32": path if path.is_file() else _tuned_onnx(keras_model, path, frozen, progress, step)
        }
    if precision != "fp32":
        calibration = calibration_indices(len(pixels), calibration_size, seed)
        step(f"int8 backbone: static QDQ calibrated on {len(calibration)} training frames")
        backbones["int8"] = cached_int8_backbone(
            backbones["fp32"], pixels[calibration], [sha256s[i] for i in calibration], cache_dir
        )

    features, featurize_stats = {}, {}
    for name, path in backbones.items():
        result = featurize(pixels, sha256s, path, cache_dir=cache_dir, progress=progress)
        features[name] = result.features
        featurize_stats[name] = {"cache_hits": result.cache_hits, "computed": result.computed}
        step(f"{name} features: {result.computed} computed, {result.cache_hits} from the cache")

    groups = dhash_groups(pixels)
    step(
        f"near-duplicate groups: {groups.n_groups} groups, {groups.merged} frames merged into another's group"
    )
    return BackboneFeatures(keras_model, backbones, features, featurize_stats, groups)
