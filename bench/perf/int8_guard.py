"""The int8 guard with and without ``reduce_range``, on this CPU.

The training pipeline's guard (``training.fit.thresholds.precision_guard``) compares the fp32 and
int8 backbones' cross-validated predictions frame by frame. Its verdict holds for the CPU it
ran on: on AVX2 without VNNI, onnxruntime's u8 x s8 kernels (VPMADDUBSW) can saturate,
which ``reduce_range`` (7-bit weights) prevents at the cost of one bit of precision. Here the
same fp32 backbone is quantized twice, with the same calibration frames, and the guard is run
for each; the CPU's int8 kernel family is recorded beside the figures (a VNNI or arm64 CPU
does not saturate either way, so there the comparison shows only what the lost bit costs).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any


def guard_with_and_without_reduce_range(
    train_root: Path,
    fp32_backbone: Path,
    cache_dir: Path,
    *,
    seed: int = 0,
    folds: int = 5,
    calibration_size: int = 64,
) -> dict[str, Any]:
    from export.quantize import quantize_backbone
    from functions.cpu import int8_kernel_family
    from training.data.dataset import load_dataset
    from training.features.featurize import featurize
    from training.features.neardup import dhash_groups
    from training.features.precision import calibration_indices
    from training.fit.crossval import cross_validate
    from training.fit.thresholds import precision_guard

    dataset = load_dataset(str(train_root), min_per_label=folds, progress=False)
    pixels, y, sha256s, labels = dataset.pixels(), dataset.targets(), dataset.sha256s(), dataset.labels
    groups = dhash_groups(pixels).group_ids
    calibration = calibration_indices(len(y), calibration_size, seed)

    def cv(backbone: Path):
        features = featurize(pixels, sha256s, backbone, cache_dir=cache_dir, progress=False).features
        return cross_validate(features, y, groups, labels, folds=folds, seed=seed, progress=False)

    fp32 = cv(fp32_backbone)
    figures: dict[str, Any] = {"int8_kernels": int8_kernel_family(), "frames": len(y)}
    with tempfile.TemporaryDirectory(prefix="bench-reduce-range-") as work:
        for reduce_range in (False, True):
            path = Path(work) / f"int8-reduce-range-{reduce_range}.onnx"
            quantize_backbone(fp32_backbone, path, pixels[calibration], reduce_range=reduce_range)
            guard = precision_guard(fp32.oof_probabilities, cv(path).oof_probabilities, y)
            figures[f"reduce_range_{str(reduce_range).lower()}"] = guard.to_dict()
    return figures
