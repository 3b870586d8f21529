"""int8 backbone: static QDQ quantization of the real (random-init) ResNet50 backbone,
checked for structure, agreement with fp32, and exact trees in the merged int8 model."""

from __future__ import annotations

from collections import Counter

import lightgbm as lgb
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from export.merge import merge_backbone_and_trees
from export.parity import ParityError, check_tree_parity
from export.quantize import quantize_backbone
from export.trees import lightgbm_to_onnx
from functions.errors import ConfigurationError

# Cosine similarity of int8 vs fp32 features, per frame. Measured here: ~0.9997 on the
# random-init backbone (frames not seen in calibration). 0.99 leaves room for calibration
# variance while a broken quantization (wrong scales, activations clipped by a bad
# calibration range, a missing DequantizeLinear) lands far below it.
MIN_COSINE = 0.99


def _calibration_frames() -> np.ndarray:
    rng = np.random.default_rng(99)
    ramp = np.linspace(0, 255, 224, dtype=np.float32)
    smooth = (ramp[None, :, None] + ramp[:, None, None]) / 2
    noise = rng.normal(0, 50, size=(8, 224, 224, 3)).astype(np.float32)
    return np.clip(smooth[None] + noise, 0, 255).astype(np.uint8)


def _features(path, frames: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["features"], {"image": frames})[0]


@pytest.fixture(scope="module")
def int8_backbone_path(backbone_onnx_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "backbone-int8.onnx"
    return quantize_backbone(backbone_onnx_path, out, _calibration_frames())


@pytest.mark.slow
def test_int8_backbone_is_static_qdq_per_channel(int8_backbone_path):
    model = onnx.load(str(int8_backbone_path))
    ops = Counter(node.op_type for node in model.graph.node)
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}

    assert ops["QuantizeLinear"] > 0
    assert ops["DequantizeLinear"] > ops["QuantizeLinear"]  # weights are dequantized too
    # Static: no DynamicQuantizeLinear; QDQ: no QLinearConv/ConvInteger (those would be
    # the QOperator format or onnxruntime's CPU-specific fusions).
    assert not {"DynamicQuantizeLinear", "QLinearConv", "ConvInteger"} & set(ops)
    assert {node.domain for node in model.graph.node} <= {""}

    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    producers = {output: node for node in model.graph.node for output in node.output}
    for conv in convs:
        weight_dq = producers[conv.input[1]]
        assert weight_dq.op_type == "DequantizeLinear"
        weight, scale = initializers[weight_dq.input[0]], initializers[weight_dq.input[1]]
        assert weight.data_type == onnx.TensorProto.INT8
        # Per-channel: one scale per output channel.
        assert list(scale.dims) == [weight.dims[0]]
        activation_dq = producers[conv.input[0]]
        assert activation_dq.op_type == "DequantizeLinear"
        assert initializers[activation_dq.input[2]].data_type == onnx.TensorProto.UINT8
    # The uint8 input still goes through the in-graph preprocessing first.
    (first_consumer,) = [node for node in model.graph.node if "image" in node.input]
    assert first_consumer.op_type == "Cast"


@pytest.mark.slow
def test_int8_features_agree_with_fp32(int8_backbone_path, backbone_onnx_path, backbone_frames):
    fp32 = _features(backbone_onnx_path, backbone_frames)
    int8 = _features(int8_backbone_path, backbone_frames)

    assert int8.shape == fp32.shape == (len(backbone_frames), 2048)
    assert int8.dtype == np.float32
    cosine = (fp32 * int8).sum(axis=1) / (np.linalg.norm(fp32, axis=1) * np.linalg.norm(int8, axis=1))
    assert cosine.min() > MIN_COSINE
    # int8 really changed the numbers: this is not the fp32 graph under another name.
    assert np.abs(fp32 - int8).max() > 1e-4


@pytest.mark.slow
def test_merged_int8_model_has_exact_trees(int8_backbone_path, backbone_onnx_path, backbone_frames, tmp_path):
    labels = ["car", "empty"]
    fp32_features = _features(backbone_onnx_path, backbone_frames)
    y = np.arange(len(backbone_frames)) % 2
    classifier = lgb.LGBMClassifier(
        n_estimators=20, num_leaves=4, min_child_samples=2, min_data_in_bin=1, random_state=0, verbose=-1
    ).fit(fp32_features, y)
    merged = merge_backbone_and_trees(
        onnx.load(str(int8_backbone_path)), lightgbm_to_onnx(classifier, 2048, labels)
    )
    path = tmp_path / "model.onnx"
    onnx.save(merged, str(path))

    figures = check_tree_parity(path, classifier, backbone_frames)

    assert figures["n_images"] == len(backbone_frames)
    assert figures["probabilities_max_abs_diff"] <= 1e-4
    assert figures["labels_disagree"] == 0
    # Another classifier is caught, int8 or not.
    other = lgb.LGBMClassifier(
        n_estimators=20, num_leaves=4, min_child_samples=2, min_data_in_bin=1, random_state=0, verbose=-1
    ).fit(fp32_features, 1 - y)
    with pytest.raises(ParityError):
        check_tree_parity(path, other, backbone_frames)


def test_quantize_rejects_a_missing_backbone(tmp_path):
    missing = tmp_path / "backbone.onnx"

    with pytest.raises(ConfigurationError) as raised:
        quantize_backbone(missing, tmp_path / "int8.onnx", _calibration_frames())
    assert str(missing) in str(raised.value)


@pytest.mark.parametrize(
    "calibration",
    [
        np.zeros((0, 224, 224, 3), np.uint8),
        np.zeros((2, 224, 224, 3), np.float32),
        np.zeros((2, 64, 64, 3), np.uint8),
    ],
    ids=["empty", "float32", "wrong-size"],
)
def test_quantize_rejects_bad_calibration_frames(tmp_path, calibration):
    backbone = tmp_path / "backbone.onnx"
    backbone.write_bytes(b"placeholder: rejected before it is read")

    with pytest.raises(ConfigurationError):
        quantize_backbone(backbone, tmp_path / "int8.onnx", calibration)


def test_quantize_rejects_a_backbone_that_is_not_onnx(tmp_path):
    garbage = tmp_path / "backbone.onnx"
    garbage.write_bytes(b"not an onnx model")

    with pytest.raises(ConfigurationError) as raised:
        quantize_backbone(garbage, tmp_path / "int8.onnx", _calibration_frames())
    assert str(garbage) in str(raised.value)
    assert not (tmp_path / "int8.onnx").exists()
