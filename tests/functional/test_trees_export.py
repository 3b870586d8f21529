"""LightGBM -> ONNX (onnxmltools): the converted trees against predict_proba, on small
random float32 data. Fast: no ResNet50 involved."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import onnxruntime as ort
import pytest

from export.merge import model_io_summary
from export.parity import PROBABILITIES_ATOL
from export.trees import lightgbm_to_onnx
from functions.errors import ConfigurationError

N_FEATURES = 32


def _fitted(n_classes: int, seed: int = 0, n_rows: int = 300) -> tuple[lgb.LGBMClassifier, np.ndarray]:
    """A small classifier on float32 features with a learnable signal, and held-out rows."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n_rows, N_FEATURES)).astype(np.float32)
    y = (features[:, :n_classes] * 2 + rng.normal(size=(n_rows, n_classes))).argmax(axis=1)
    classifier = lgb.LGBMClassifier(
        n_estimators=30, num_leaves=8, min_child_samples=5, random_state=seed, verbose=-1
    )
    classifier.fit(features, y)
    held_out = rng.normal(size=(200, N_FEATURES)).astype(np.float32)
    return classifier, held_out


def _run(model, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    probabilities, label = session.run(["probabilities", "label"], {"features": features})
    return probabilities, label


@pytest.mark.parametrize(
    ("labels", "expected_ml_opset"),
    [(["car", "empty"], 1), (["bus", "car", "empty"], 1)],
    ids=["binary", "multiclass"],
)
def test_onnx_trees_match_predict_proba(labels, expected_ml_opset):
    classifier, held_out = _fitted(len(labels))
    model = lightgbm_to_onnx(classifier, N_FEATURES, labels)

    probabilities, label = _run(model, held_out)
    reference = classifier.predict_proba(held_out)

    assert probabilities.dtype == np.float32
    # Binary gives both columns too: one column per label, in labels order.
    assert probabilities.shape == (len(held_out), len(labels))
    np.testing.assert_allclose(probabilities, reference, rtol=0, atol=PROBABILITIES_ATOL)
    np.testing.assert_array_equal(probabilities.argmax(axis=1), classifier.predict(held_out))
    np.testing.assert_array_equal(label, classifier.predict(held_out))
    # Not a degenerate classifier: it predicts more than one class on held-out rows.
    assert len(np.unique(label)) > 1
    assert model_io_summary(model)["opsets"]["ai.onnx.ml"] == expected_ml_opset


def test_onnx_trees_io_names_dtypes_and_shapes():
    labels = ["bus", "car", "empty"]
    classifier, _ = _fitted(len(labels))

    summary = model_io_summary(lightgbm_to_onnx(classifier, N_FEATURES, labels))

    assert summary["inputs"] == [{"name": "features", "dtype": "float32", "shape": ["N", N_FEATURES]}]
    assert summary["outputs"] == [
        {"name": "label", "dtype": "int64", "shape": ["N"]},
        {"name": "probabilities", "dtype": "float32", "shape": ["N", 3]},
    ]
    assert "ZipMap" not in summary["op_counts"]


def test_classes_must_be_label_indices():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, N_FEATURES)).astype(np.float32)
    classifier = lgb.LGBMClassifier(n_estimators=3, min_child_samples=5, verbose=-1)
    classifier.fit(features, np.array(["car", "empty"] * 30))

    with pytest.raises(ConfigurationError) as raised:
        lightgbm_to_onnx(classifier, N_FEATURES, ["car", "empty"])
    assert "labels.index" in str(raised.value)


def test_label_count_must_match_classes():
    classifier, _ = _fitted(3)

    with pytest.raises(ConfigurationError):
        lightgbm_to_onnx(classifier, N_FEATURES, ["car", "empty"])


def test_feature_count_must_match_backbone():
    classifier, _ = _fitted(2)

    with pytest.raises(ConfigurationError) as raised:
        lightgbm_to_onnx(classifier, 2048, ["car", "empty"])
    assert "2048" in str(raised.value)


def test_unfitted_classifier_raises_configuration_error():
    with pytest.raises(ConfigurationError):
        lightgbm_to_onnx(lgb.LGBMClassifier(), N_FEATURES, ["car", "empty"])
