"""Parity: the shipped ``model.onnx`` must agree with what it was built from.

* ``check_parity`` (fp32 model): onnxruntime on the merged graph vs the Keras reference
  features (``keras_features``) and LightGBM's ``predict_proba`` on them.
* ``check_tree_parity`` (int8 model, whose features legitimately differ from Keras): the
  model's probabilities vs ``predict_proba`` of the model's own ``features`` output. The
  trees must be exact whatever the backbone's precision.
* ``check_stored_features`` (training from feature shards, where there is no Keras model):
  the backbone's features here vs the float16 features the function stored for the same
  frames (tolerances below: float16 rounding plus another CPU's summation order).

Tolerances (docs/design.md, "Numbers that must agree"): features ``np.allclose(onnx, keras, rtol=1e-3, atol=1e-4)``,
probabilities within 1e-4 absolute, labels (argmax) identical. Both functions return the
measured figures (for the manifest and reports) and raise ``ParityError`` carrying them
when a tolerance is exceeded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from functions.errors import CamsortError
from functions.frames.manifest import FEATURES_OUTPUT, INPUT_NAME, PROBABILITIES_OUTPUT

FEATURES_RTOL = 1e-3
FEATURES_ATOL = 1e-4
PROBABILITIES_ATOL = 1e-4
# Stored (float16) features: rounding to nearest float16 errs by at most 2**-11 ~ 4.9e-4 relative
# (normal range), so rtol 1e-3 is twice that. A feature that is a sum of large terms cancelling
# to near zero carries float32 noise relative to the terms, not to itself, and the shards were
# computed on another CPU (Lambda's) whose kernels may sum in another order: atol is 1e-3 of the
# frame's largest |feature| (float16 subnormals, below 6.1e-5, err by < 3e-8: inside it too).
# A wrong backbone, loader or preprocessing moves features by whole percents.
STORED_FEATURES_RTOL = 1e-3
STORED_FEATURES_ATOL_SCALE = 1e-3


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
    onnx_probabilities: np.ndarray,
    reference_probabilities: np.ndarray,
    thresholds: np.ndarray | None = None,
) -> dict[str, Any]:
    if thresholds is None:  # one label per frame: the arg-max
        agree = onnx_probabilities.argmax(axis=1) == reference_probabilities.argmax(axis=1)
    else:  # multi-label: the whole set (every label against its own threshold) must agree
        onnx_sets = onnx_probabilities >= thresholds
        reference_sets = reference_probabilities.astype(np.float32) >= thresholds
        agree = (onnx_sets == reference_sets).all(axis=1)
    return {
        "probabilities_max_abs_diff": float(np.abs(onnx_probabilities - reference_probabilities).max()),
        "labels_agree": int(agree.sum()),
        "labels_disagree": int((~agree).sum()),
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


def _threshold_vector(labels: list[str], thresholds: dict[str, float] | None) -> np.ndarray | None:
    if thresholds is None:
        return None
    return np.array([thresholds[label] for label in labels], dtype=np.float64)


def check_parity(
    model_path: Path | str,
    keras_model,
    classifier,
    images: np.ndarray,
    *,
    labels: list[str],
    thresholds: dict[str, float] | None = None,
) -> dict:
    """Compare the merged fp32 model with Keras + LightGBM on ``images`` (uint8 [N,224,224,3]).

    With ``thresholds`` (multi-label), every label's column is compared and the label sets
    (each probability against its label's threshold) must be identical.
    """
    from export.backbone import keras_features

    images = np.ascontiguousarray(images, dtype=np.uint8)
    # Four frames a forward pass: at 16, the ResNet50's activations alone took ~1.5 GB of the
    # training process's peak; the features do not depend on the batch (within float noise).
    reference_features = keras_features(keras_model, images, batch_size=4)
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
        **_probability_figures(
            onnx_probabilities, reference_probabilities, _threshold_vector(labels, thresholds)
        ),
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


def check_tree_parity(
    model_path: Path | str,
    classifier,
    images: np.ndarray,
    *,
    labels: list[str] | None = None,
    thresholds: dict[str, float] | None = None,
) -> dict:
    """The model's probabilities vs ``predict_proba`` of its own ``features`` output (int8 or fp32)."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    onnx_probabilities, onnx_features = _run_model(model_path, images)
    reference_probabilities = classifier.predict_proba(onnx_features.astype(np.float32))
    _check_shape(model_path, onnx_probabilities, reference_probabilities.shape)
    figures = {
        "n_images": len(images),
        **_probability_figures(
            onnx_probabilities, reference_probabilities, _threshold_vector(labels or [], thresholds)
        ),
        "tolerances": {"probabilities_atol": PROBABILITIES_ATOL},
    }
    _raise_if(_problems(figures), model_path, figures, "tree")
    return figures


def check_stored_features(
    what: str, features: np.ndarray, stored: np.ndarray, *, sources: list[str] | None = None
) -> dict:
    """``features`` (float32 [N, F], the backbone run here) vs ``stored`` (float16 [N, F], the
    feature shards of the same frame contents). Raises ``ParityError`` beyond the tolerances."""
    features = np.asarray(features, dtype=np.float32)
    reference = np.asarray(stored).astype(np.float32)
    if features.shape != reference.shape:
        raise ParityError(
            f"{what}: features have shape {features.shape}, the shards {reference.shape}: "
            "the backbone is not the one that wrote the shards"
        )
    diff = np.abs(features - reference)
    scale = np.abs(reference).max(axis=1, keepdims=True)
    allowed = STORED_FEATURES_RTOL * np.abs(reference) + STORED_FEATURES_ATOL_SCALE * scale
    bad_frames = np.flatnonzero((diff > allowed).any(axis=1))
    figures = {
        "n_images": len(features),
        "features_max_abs_diff": float(diff.max()),
        "features_max_rel_diff": float((diff / np.maximum(np.abs(reference), 1e-12)).max()),
        "features_max_diff_over_frame_scale": float((diff / np.maximum(scale, 1e-12)).max()),
        "worst_diff_over_allowed": float((diff / np.maximum(allowed, 1e-30)).max()),  # < 1 passes
        "frames_outside_tolerance": int(len(bad_frames)),
        "tolerances": {
            "features_rtol": STORED_FEATURES_RTOL,
            "features_atol": f"{STORED_FEATURES_ATOL_SCALE} x the frame's largest |feature|",
            "stored_dtype": str(np.asarray(stored).dtype),
        },
    }
    if len(bad_frames):
        named = (
            ", ".join(sources[i] for i in bad_frames[:3]) if sources else f"frames {bad_frames[:3].tolist()}"
        )
        raise ParityError(
            f"{what}: features differ from the stored shards on {len(bad_frames)} of {len(features)} frames "
            f"(e.g. {named}; max |diff| {figures['features_max_abs_diff']:.3g}). Figures: {figures}. The shards "
            "were not written by this backbone with this loader: featurize again with the model you train "
            "from, or give the model that wrote them (for an int8 backbone: on a CPU of the same int8 kernel family)"
        )
    return figures
