"""Parity: the shipped ``model.onnx`` must agree with what it was built from.

* ``check_parity`` (fp32 model): onnxruntime on the merged graph vs the Keras reference
  features (``keras_features``) and LightGBM's ``predict_proba`` on them.
* ``check_tree_parity`` (int8 model, whose features legitimately differ from Keras): the
  model's probabilities vs ``predict_proba`` of the model's own ``features`` output. The
  trees must be exact whatever the backbone's precision.

Tolerances (DESIGN.md): features ``np.allclose(onnx, keras, rtol=1e-3, atol=1e-4)``,
probabilities within 1e-4 absolute, labels (argmax) identical. Both functions return the
measured figures (for the manifest and reports) and raise ``ParityError`` carrying them
when a tolerance is exceeded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from functions.errors import CamsortError
from functions.manifest import FEATURES_OUTPUT, INPUT_NAME, PROBABILITIES_OUTPUT

FEATURES_RTOL = 1e-3
FEATURES_ATOL = 1e-4
PROBABILITIES_ATOL = 1e-4


class ParityError(CamsortError):
    """The exported ONNX model disagrees with Keras + LightGBM beyond the tolerances."""


def _run_model(model_path: Path | str, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, features) of the ONNX model. Default session options: in memory only."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    probabilities, features = session.run([PROBABILITIES_OUTPUT, FEATURES_OUTPUT], {INPUT_NAME: images})
    return probabilities, features


def _check_shape(model_path: Path | str, onnx_probabilities: np.ndarray, expected: tuple[int, ...]) -> None:
    if onnx_probabilities.shape != tuple(expected):
        raise ParityError(
            f"{model_path}: probabilities have shape {onnx_probabilities.shape}, expected {tuple(expected)}: "
            "the model was exported from another classifier or for other labels; re-export it"
        )


def _probability_figures(
    onnx_probabilities: np.ndarray, reference_probabilities: np.ndarray
) -> dict[str, Any]:
    onnx_labels = onnx_probabilities.argmax(axis=1)
    reference_labels = reference_probabilities.argmax(axis=1)
    return {
        "probabilities_max_abs_diff": float(np.abs(onnx_probabilities - reference_probabilities).max()),
        "labels_agree": int((onnx_labels == reference_labels).sum()),
        "labels_disagree": int((onnx_labels != reference_labels).sum()),
    }


def _problems(figures: dict[str, Any]) -> list[str]:
    problems = []
    if figures["probabilities_max_abs_diff"] > PROBABILITIES_ATOL:
        problems.append(
            f"probabilities differ by up to {figures['probabilities_max_abs_diff']:.3g} (> {PROBABILITIES_ATOL})"
        )
    if figures["labels_disagree"]:
        problems.append(f"{figures['labels_disagree']} of {figures['n_images']} labels differ")
    return problems


def _raise_if(problems: list[str], model_path: Path | str, figures: dict[str, Any], what: str) -> None:
    if problems:
        raise ParityError(
            f"{model_path}: {what} parity failed: {'; '.join(problems)}. Figures: {figures}. "
            "Re-export the model from the same backbone and classifier (and train LightGBM on float32 features)."
        )


def check_parity(
    model_path: Path | str, keras_model, classifier, images: np.ndarray, *, labels: list[str]
) -> dict:
    """Compare the merged fp32 model with Keras + LightGBM on ``images`` (uint8 [N,224,224,3])."""
    from export.backbone import keras_features

    images = np.ascontiguousarray(images, dtype=np.uint8)
    reference_features = keras_features(keras_model, images)
    reference_probabilities = classifier.predict_proba(reference_features.astype(np.float32))
    onnx_probabilities, onnx_features = _run_model(model_path, images)
    _check_shape(model_path, onnx_probabilities, (len(images), len(labels)))
    feature_diff = np.abs(onnx_features - reference_features)
    figures = {
        "n_images": len(images),
        "features_max_abs_diff": float(feature_diff.max()),
        "features_max_rel_diff": float((feature_diff / np.maximum(np.abs(reference_features), 1e-12)).max()),
        "features_allclose": bool(
            np.allclose(onnx_features, reference_features, rtol=FEATURES_RTOL, atol=FEATURES_ATOL)
        ),
        **_probability_figures(onnx_probabilities, reference_probabilities),
        "tolerances": {
            "features_rtol": FEATURES_RTOL,
            "features_atol": FEATURES_ATOL,
            "probabilities_atol": PROBABILITIES_ATOL,
        },
    }
    problems = _problems(figures)
    if not figures["features_allclose"]:
        problems.insert(
            0,
            f"features differ by up to {figures['features_max_abs_diff']:.3g} abs "
            f"(allowed atol {FEATURES_ATOL} + rtol {FEATURES_RTOL} x |keras|)",
        )
    _raise_if(problems, model_path, figures, "Keras + LightGBM")
    return figures


def check_tree_parity(model_path: Path | str, classifier, images: np.ndarray) -> dict:
    """The model's probabilities vs ``predict_proba`` of its own ``features`` output (int8 or fp32)."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    onnx_probabilities, onnx_features = _run_model(model_path, images)
    reference_probabilities = classifier.predict_proba(onnx_features.astype(np.float32))
    _check_shape(model_path, onnx_probabilities, reference_probabilities.shape)
    figures = {
        "n_images": len(images),
        **_probability_figures(onnx_probabilities, reference_probabilities),
        "tolerances": {"probabilities_atol": PROBABILITIES_ATOL},
    }
    _raise_if(_problems(figures), model_path, figures, "tree")
    return figures
