"""The export step of `camsort train`: the shipped model.onnx and the parity gate, tool versions.

``export_and_check`` merges the final trees into each backbone that needs them and checks the
merged graphs (fp32 against Keras + LightGBM; int8 trees against LightGBM on int8 features);
``tool_versions`` records what shaped the model's bytes and numbers in the manifest;
``move_into`` publishes a staged model directory.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np

from functions.frames.manifest import MODEL_FILENAME


def export_and_check(
    backbones,
    shipped,
    classifier,
    trees,
    labels,
    keras_model,
    pixels,
    seed,
    parity_sample,
    work: Path,
    thresholds: dict[str, float] | None = None,
):
    """Merge the head into each needed backbone, run the parity gate; return the shipped file.

    ``thresholds`` (multi-label): every label's column is compared and the label sets must agree.
    """
    import onnx

    from export.merge import merge_backbone_and_trees
    from export.parity import check_parity, check_tree_parity

    sample = np.sort(
        np.random.default_rng(seed + 1).choice(
            len(pixels), size=min(parity_sample, len(pixels)), replace=False
        )
    )
    # Frames the trees have never seen, like production's: the sampled training frames
    # mirrored left to right. Training frames themselves are the one input where Keras' and
    # onnxruntime's float noise (~1e-6 on the features) can flip a split: LightGBM puts every
    # threshold midway between two *training* values, so a training frame may sit a few 1e-6
    # from one. Measured on 300 synthetic frames: 1 of 96 training frames off by 1.9e-4,
    # 0 of 96 mirrored frames (max 2.5e-7).
    images = np.ascontiguousarray(pixels[sample][:, :, ::-1])

    # The fp32 graph is always checked against Keras + LightGBM: it proves the conversion.
    fp32_model = work / "model-fp32.onnx"
    onnx.save(merge_backbone_and_trees(onnx.load(str(backbones["fp32"])), trees), str(fp32_model))
    parity = {
        "fp32_vs_keras": check_parity(
            fp32_model, keras_model, classifier, images, labels=list(labels), thresholds=thresholds
        )
    }
    if shipped != "fp32":
        # int8 features legitimately differ from Keras; the trees on top of them must not.
        int8_model = work / "model-int8.onnx"
        onnx.save(merge_backbone_and_trees(onnx.load(str(backbones["int8"])), trees), str(int8_model))
        parity["int8_trees"] = check_tree_parity(
            int8_model, classifier, images, labels=list(labels), thresholds=thresholds
        )
    fitted = "heads" if thresholds else "trees"  # multi-label: one head per label
    for figures in parity.values():
        figures["images"] = (
            f"{len(images)} training frames (seed {seed + 1}) mirrored left-right: unseen by the {fitted}"
        )
    return (fp32_model if shipped == "fp32" else int8_model), parity


def tool_versions() -> dict[str, str]:
    """The versions of everything that shaped the model's bytes and numbers."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    distributions = {
        "camsort": ["camsort"],
        "tensorflow": ["tensorflow-cpu", "tensorflow"],
        "keras": ["keras"],
        "tf2onnx": ["tf2onnx"],
        "onnx": ["onnx"],
        "onnxmltools": ["onnxmltools"],
        "lightgbm": ["lightgbm"],
        "onnxruntime": ["onnxruntime"],
        "numpy": ["numpy"],
        "scikit-learn": ["scikit-learn"],
        "pillow": ["pillow"],
    }
    for name, candidates in distributions.items():
        for candidate in candidates:
            try:
                versions[name] = metadata.version(candidate)
                break
            except metadata.PackageNotFoundError:
                continue
        else:
            versions[name] = "not installed"
    return versions


def parity_line(parity: dict[str, dict]) -> str:
    """One line for the screen: the largest differences the parity gate let through."""
    features = [f["features_max_abs_diff"] for f in parity.values() if "features_max_abs_diff" in f]
    probabilities = [
        f["probabilities_max_abs_diff"] for f in parity.values() if "probabilities_max_abs_diff" in f
    ]
    line = "parity: " + (f"features max |diff| {max(features):.2g}, " if features else "")
    return line + f"probabilities max |diff| {max(probabilities):.2g}, labels identical"


def move_into(staged: Path, out_dir: Path) -> None:
    """Every file of ``staged`` into ``out_dir`` (each replaced atomically), model.onnx last but
    one and manifest.json last: a reader never sees a manifest describing another model.onnx."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in staged.iterdir())
    order = [n for n in names if n not in (MODEL_FILENAME, "manifest.json")] + [
        MODEL_FILENAME,
        "manifest.json",
    ]
    for name in order:
        os.replace(staged / name, out_dir / name)
