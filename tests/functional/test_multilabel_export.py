"""Per-label LightGBMs -> one ONNX graph, merged into a (tiny) backbone: ONNX against LightGBM.

The backbone here is a small real ONNX graph with the backbone's interface (uint8 image ->
float32 features [N, 2048]: channel means times fixed weights), so the test runs in seconds;
the ResNet50 path is the same merge code (tests/functional/test_merge_and_parity.py).
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.merge import merge_backbone_and_trees, model_io_summary
from export.multilabel_trees import multilabel_lightgbm_to_onnx
from export.parity import PROBABILITIES_ATOL, ParityError, check_tree_parity
from functions.errors import ConfigurationError
from functions.frames.manifest import FEATURE_SIZE, FEATURES_OUTPUT, INPUT_NAME
from training.fit.crossval import MultiLabelHead
from training.fit.lightgbm import fit_lightgbm_per_label

LABELS = ["bus", "car", "night"]
SMALL_PARAMS = {"n_estimators": 30, "num_leaves": 4, "min_child_samples": 3, "colsample_bytree": 0.5}


def tiny_backbone() -> onnx.ModelProto:
    weights = np.random.default_rng(0).standard_normal((3, FEATURE_SIZE)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Cast", [INPUT_NAME], ["pixels"], to=TensorProto.FLOAT),
            helper.make_node("ReduceMean", ["pixels"], ["means"], axes=[1, 2], keepdims=0),
            helper.make_node("MatMul", ["means", "w"], [FEATURES_OUTPUT]),
        ],
        "tiny_backbone",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["N", 224, 224, 3])],
        [helper.make_tensor_value_info(FEATURES_OUTPUT, TensorProto.FLOAT, ["N", FEATURE_SIZE])],
        initializer=[numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    return model


def frames(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames of random colour blocks; labels from the colour: red-ish = bus, green-ish = car, dark = night."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(n, 1, 1, 3))
    noise = rng.integers(-20, 21, size=(n, 224, 224, 3))
    images = np.clip(base + noise, 0, 255).astype(np.uint8)
    means = images.reshape(n, -1, 3).mean(axis=1)
    y = np.stack([means[:, 0] > 128, means[:, 1] > 128, means.mean(axis=1) < 100], axis=1).astype(np.uint8)
    return images, y


def backbone_features(model: onnx.ModelProto, images: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run([FEATURES_OUTPUT], {INPUT_NAME: images})[0]


@pytest.fixture(scope="module")
def trained():
    backbone = tiny_backbone()
    images, y = frames(120, seed=1)
    features = backbone_features(backbone, images)
    head = MultiLabelHead(fit_lightgbm_per_label(features, y, SMALL_PARAMS, seed=0), LABELS)
    return backbone, head


@pytest.fixture(scope="module")
def merged_path(trained, tmp_path_factory):
    backbone, head = trained
    merged = merge_backbone_and_trees(
        backbone, multilabel_lightgbm_to_onnx(head.models, FEATURE_SIZE, LABELS)
    )
    path = tmp_path_factory.mktemp("ml") / "model.onnx"
    onnx.save(merged, str(path))
    return path


def test_one_graph_with_one_independent_probability_per_label(merged_path):
    summary = model_io_summary(onnx.load(str(merged_path)))
    assert summary["outputs"] == [
        {"name": "probabilities", "dtype": "float32", "shape": ["N", 3]},
        {"name": "features", "dtype": "float32", "shape": ["N", 2048]},
    ]
    assert summary["op_counts"]["TreeEnsembleClassifier"] == 3  # one per label, in one graph


def test_onnx_equals_lightgbm_for_every_label(trained, merged_path):
    _, head = trained
    unseen, y = frames(40, seed=2)  # frames the trees never saw
    session = ort.InferenceSession(str(merged_path), providers=["CPUExecutionProvider"])
    probabilities, features = session.run(None, {INPUT_NAME: unseen})
    reference = head.predict_proba(features)
    assert probabilities.shape == (40, 3)
    assert np.abs(probabilities - reference).max() <= PROBABILITIES_ATOL  # explicit: 1e-4
    assert not np.allclose(probabilities.sum(axis=1), 1.0)  # independent, not a softmax
    # the trees learnt something real: each label separates its frames on unseen data
    for k in range(3):
        assert probabilities[y[:, k] == 1, k].mean() > probabilities[y[:, k] == 0, k].mean() + 0.3


def test_parity_gate_checks_every_label_set(trained, merged_path):
    _, head = trained
    images, _ = frames(16, seed=3)
    thresholds = dict.fromkeys(LABELS, 0.5)
    figures = check_tree_parity(merged_path, head, images, labels=LABELS, thresholds=thresholds)
    assert figures["labels_disagree"] == 0 and figures["labels_agree"] == 16
    assert figures["probabilities_max_abs_diff"] <= PROBABILITIES_ATOL


def test_parity_gate_fails_when_one_label_differs(trained, merged_path):
    _, head = trained
    # a reference whose last label comes from another model: the gate must catch that one column
    images, y = frames(60, seed=4)
    other = fit_lightgbm_per_label(backbone_features(trained[0], images), 1 - y, SMALL_PARAMS, seed=0)
    wrong = MultiLabelHead([*head.models[:2], other[2]], LABELS)
    with pytest.raises(ParityError, match="parity failed"):
        check_tree_parity(merged_path, wrong, images, labels=LABELS, thresholds=dict.fromkeys(LABELS, 0.5))


def test_model_count_must_match_labels(trained):
    _, head = trained
    with pytest.raises(ConfigurationError, match="one each"):
        multilabel_lightgbm_to_onnx(head.models[:2], FEATURE_SIZE, LABELS)
