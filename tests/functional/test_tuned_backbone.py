"""The fine-tuned backbone's ONNX from the frozen graph (export.tuned_backbone): no second tf2onnx
conversion, and the same numbers as the fine-tuned Keras network within the parity gate's bounds."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest

from export.backbone import keras_features
from export.tuned_backbone import TunedGraphMismatch, tuned_backbone
from training.fit.finetune_net import copy_backbone

pytestmark = pytest.mark.slow


def _features(path, frames) -> np.ndarray:
    return onnxruntime.InferenceSession(str(path)).run(None, {"image": frames})[0]


def test_the_frozen_weights_give_back_the_frozen_graphs_features(
    keras_backbone, backbone_onnx_path, backbone_frames, tmp_path
):
    same = tuned_backbone(backbone_onnx_path, keras_backbone, tmp_path / "same.onnx")
    np.testing.assert_allclose(
        _features(same, backbone_frames), _features(backbone_onnx_path, backbone_frames), rtol=1e-5, atol=1e-5
    )


def test_changed_conv_and_batch_norm_weights_match_keras(
    keras_backbone, backbone_onnx_path, backbone_frames, tmp_path
):
    """conv5 and conv1 changed as fine-tuning changes them (BatchNorm shifts included: the frozen
    graph has no Conv bias, so one is added)."""
    tuned = copy_backbone(keras_backbone)
    rng = np.random.default_rng(7)
    for layer in tuned.layers:
        if not layer.name.startswith(("conv5", "conv1")) or not layer.weights:
            continue
        if layer.__class__.__name__ == "BatchNormalization":
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([
                gamma * rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
                beta + rng.normal(0, 0.1, beta.shape).astype(np.float32),
                mean + rng.normal(0, 0.1, mean.shape).astype(np.float32),
                variance * rng.uniform(0.5, 2.0, variance.shape).astype(np.float32),
            ])  # fmt: skip
        else:
            layer.set_weights(
                [w * rng.uniform(0.8, 1.2, w.shape).astype(np.float32) for w in layer.get_weights()]
            )

    path = tuned_backbone(backbone_onnx_path, tuned, tmp_path / "tuned.onnx")

    reference = keras_features(tuned, backbone_frames)
    ours = _features(path, backbone_frames)
    assert not np.allclose(ours, _features(backbone_onnx_path, backbone_frames), atol=1e-2)
    # The parity gate's bounds (docs/design.md: features within rtol 1e-3 / atol 1e-4).
    np.testing.assert_allclose(ours, reference, rtol=1e-3, atol=1e-4 * max(1.0, np.abs(reference).max()))
    conv_nodes = [node for node in onnx.load(str(path)).graph.node if node.op_type == "Conv"]
    assert len(conv_nodes) == 53 and all(len(node.input) == 3 for node in conv_nodes)


def test_another_architecture_is_refused(keras_backbone, backbone_onnx_path, tmp_path):
    import keras

    other = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="conv1_conv")])
    with pytest.raises(TunedGraphMismatch, match="Conv2D"):
        tuned_backbone(backbone_onnx_path, other, tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
