"""The merged model (real ResNet50 backbone + LightGBM trained on its features) against
Keras + LightGBM through check_parity, and what merge guarantees about the graph."""

from __future__ import annotations

from collections import Counter

import lightgbm as lgb
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from export.merge import TREES_PREFIX, merge_backbone_and_trees, model_io_summary
from export.parity import ParityError, check_parity, check_tree_parity
from export.trees import lightgbm_to_onnx
from functions.errors import ConfigurationError

LABELS = ["bus", "car", "empty"]


def _train(features: np.ndarray, y: np.ndarray, seed: int = 0) -> lgb.LGBMClassifier:
    # float32 features: ONNX trees compare in float32 (docs/design.md, "Numbers that must agree").
    classifier = lgb.LGBMClassifier(
        n_estimators=20, num_leaves=4, min_child_samples=2, min_data_in_bin=1, random_state=seed, verbose=-1
    )
    return classifier.fit(features.astype(np.float32), y)


@pytest.fixture(scope="module")
def trained(backbone_frames_keras_features):
    """A classifier trained on the backbone's Keras features of the session frames
    (labels assigned round-robin: the point is a real tree ensemble over real features)."""
    features = backbone_frames_keras_features
    y = np.arange(len(features)) % len(LABELS)
    return _train(features, y), features, y


@pytest.fixture(scope="module")
def merged_model_path(backbone_onnx_path, trained, tmp_path_factory):
    classifier, _, _ = trained
    merged = merge_backbone_and_trees(
        onnx.load(str(backbone_onnx_path)), lightgbm_to_onnx(classifier, 2048, LABELS)
    )
    path = tmp_path_factory.mktemp("merged") / "model.onnx"
    onnx.save(merged, str(path))
    return path


@pytest.mark.slow
def test_merged_model_io_and_graph(merged_model_path):
    model = onnx.load(str(merged_model_path))
    onnx.checker.check_model(model, full_check=True)
    summary = model_io_summary(model)

    assert summary["inputs"] == [{"name": "image", "dtype": "uint8", "shape": ["N", 224, 224, 3]}]
    assert summary["outputs"] == [
        {"name": "probabilities", "dtype": "float32", "shape": ["N", 3]},
        {"name": "features", "dtype": "float32", "shape": ["N", 2048]},
    ]
    assert summary["opsets"] == {"ai.onnx": 15, "ai.onnx.ml": 1}
    assert summary["op_counts"]["TreeEnsembleClassifier"] == 1
    names = Counter(node.name for node in model.graph.node)
    assert max(names.values()) == 1
    tree_nodes = [node for node in model.graph.node if node.domain == "ai.onnx.ml"]
    assert all(node.name.startswith(TREES_PREFIX) for node in tree_nodes)


@pytest.mark.slow
def test_check_parity_passes_and_reports_figures(merged_model_path, keras_backbone, trained, backbone_frames):
    classifier, _, _ = trained

    figures = check_parity(merged_model_path, keras_backbone, classifier, backbone_frames, labels=LABELS)

    assert figures["n_images"] == len(backbone_frames)
    assert figures["features_allclose"] is True
    # tf2onnx vs Keras on 2 CPU cores: measured ~8e-6 on features of magnitude up to ~40.
    assert 0 <= figures["features_max_abs_diff"] < 1e-3
    assert figures["probabilities_max_abs_diff"] <= 1e-4
    assert figures["labels_agree"] == len(backbone_frames)
    assert figures["labels_disagree"] == 0
    assert figures["tolerances"] == {"features_rtol": 1e-3, "features_atol": 1e-4, "probabilities_atol": 1e-4}


@pytest.mark.slow
def test_merged_model_probabilities_are_the_classifier_on_its_features(
    merged_model_path, trained, backbone_frames
):
    classifier, features, _ = trained

    figures = check_tree_parity(merged_model_path, classifier, backbone_frames)

    assert figures["probabilities_max_abs_diff"] <= 1e-4
    assert figures["labels_disagree"] == 0
    # The trees learnt something from these features: they tell the frames apart, so
    # agreeing labels is not agreement on a constant.
    assert len(np.unique(classifier.predict(features))) > 1


@pytest.mark.slow
def test_check_parity_raises_for_another_classifier(
    merged_model_path, keras_backbone, trained, backbone_frames
):
    _, features, y = trained
    # Same features, labels rotated: a different classifier than the one merged into the model.
    tampered = _train(features, (y + 1) % len(LABELS))

    with pytest.raises(ParityError) as raised:
        check_parity(merged_model_path, keras_backbone, tampered, backbone_frames[:4], labels=LABELS)
    message = str(raised.value)
    assert str(merged_model_path) in message
    assert "probabilities differ" in message
    with pytest.raises(ParityError):
        check_tree_parity(merged_model_path, tampered, backbone_frames[:4])


@pytest.mark.slow
def test_check_parity_raises_when_labels_do_not_match_the_model(
    merged_model_path, keras_backbone, trained, backbone_frames
):
    classifier, _, _ = trained

    with pytest.raises(ParityError):
        check_parity(
            merged_model_path, keras_backbone, classifier, backbone_frames[:2], labels=["car", "empty"]
        )


def test_merge_rejects_graphs_without_the_contract_names():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 2048)).astype(np.float32)
    trees = lightgbm_to_onnx(_train(features, np.arange(40) % 2), 2048, ["car", "empty"])

    # The trees graph where the backbone should be: input "features", not "image".
    with pytest.raises(ConfigurationError) as raised:
        merge_backbone_and_trees(trees, trees)
    assert "backbone" in str(raised.value)


def test_merge_leaves_its_inputs_unchanged_and_prefixes_tree_names():
    """A tiny stand-in backbone (uint8 image -> 2048 features by mean-pooling and tiling)
    exercises the merge itself without a ResNet50."""
    from onnx import TensorProto, helper

    image = helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", 224, 224, 3])
    features = helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 2048])
    repeats = helper.make_tensor("repeats", TensorProto.INT64, [2], [1, 2048 // 3 + 1])
    starts = helper.make_tensor("starts", TensorProto.INT64, [1], [0])
    ends = helper.make_tensor("ends", TensorProto.INT64, [1], [2048])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [
        helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT, name="cast"),
        helper.make_node("ReduceMean", ["pixels"], ["means"], axes=[1, 2], keepdims=0, name="pool"),
        helper.make_node("Tile", ["means", "repeats"], ["tiled"], name="tile"),
        helper.make_node("Slice", ["tiled", "starts", "ends", "axes"], ["features"], name="slice"),
    ]
    graph = helper.make_graph(nodes, "stand_in", [image], [features], [repeats, starts, ends, axes])
    backbone = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    backbone.ir_version = 8
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(30, 224, 224, 3), dtype=np.uint8)
    pooled = np.tile(frames.reshape(30, -1, 3).astype(np.float32).mean(axis=1), 683)[:, :2048]
    classifier = _train(pooled, (pooled[:, 0] > np.median(pooled[:, 0])).astype(int))
    trees = lightgbm_to_onnx(classifier, 2048, ["car", "empty"])
    backbone_bytes, trees_bytes = backbone.SerializeToString(), trees.SerializeToString()

    merged = merge_backbone_and_trees(backbone, trees)

    assert backbone.SerializeToString() == backbone_bytes
    assert trees.SerializeToString() == trees_bytes
    assert [value.name for value in merged.graph.output] == ["probabilities", "features"]
    tree_names = {name for node in merged.graph.node[len(nodes) :] for name in [*node.input, *node.output]}
    assert tree_names - {"features", "probabilities"}
    assert all(name.startswith(TREES_PREFIX) for name in tree_names - {"features", "probabilities"})
    session = ort.InferenceSession(merged.SerializeToString(), providers=["CPUExecutionProvider"])
    probabilities, merged_features = session.run(["probabilities", "features"], {"image": frames})
    np.testing.assert_allclose(merged_features, pooled, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(probabilities, classifier.predict_proba(merged_features), rtol=0, atol=1e-4)
