"""Keras ResNet50 -> ONNX backbone: the exported graph against Keras, in the tf2onnx style:
build the model in the test, run both, compare with explicit tolerances."""

from __future__ import annotations

import os
import socket
import urllib.request
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from export.backbone import (
    backbone_cache_key,
    build_keras_backbone,
    cached_backbone,
    export_backbone,
    keras_features,
    weights_label,
)
from export.merge import model_io_summary
from export.parity import FEATURES_ATOL, FEATURES_RTOL
from functions.errors import ConfigurationError

# Keras' own ImageNet means for caffe-mode preprocess_input, in BGR order.
CAFFE_BGR_MEANS = np.array([103.939, 116.779, 123.68], dtype=np.float32)


def _onnx_features(path: Path, images: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["features"], {"image": images})[0]


@pytest.mark.slow
def test_onnx_features_match_keras_on_random_frames(
    backbone_frames_keras_features, backbone_onnx_path, backbone_frames
):
    reference = backbone_frames_keras_features
    exported = _onnx_features(backbone_onnx_path, backbone_frames)

    assert exported.dtype == np.float32
    assert exported.shape == reference.shape == (len(backbone_frames), 2048)
    np.testing.assert_allclose(exported, reference, rtol=FEATURES_RTOL, atol=FEATURES_ATOL)
    # The features are not trivially small, so the tolerance above is a real constraint.
    assert np.abs(reference).max() > 1.0


@pytest.mark.slow
def test_onnx_features_match_keras_on_constant_frames(keras_backbone, backbone_onnx_path):
    # Constant frames isolate the per-channel part of preprocessing (channel order and means):
    # a swapped R/B or a wrong mean shifts every pixel of one channel.
    frames = np.stack(
        [
            np.zeros((224, 224, 3), np.uint8),
            np.full((224, 224, 3), 255, np.uint8),
            np.broadcast_to(np.array([255, 0, 0], np.uint8), (224, 224, 3)),
            np.broadcast_to(np.array([0, 0, 255], np.uint8), (224, 224, 3)),
        ]
    )
    reference = keras_features(keras_backbone, frames)
    exported = _onnx_features(backbone_onnx_path, frames)

    np.testing.assert_allclose(exported, reference, rtol=FEATURES_RTOL, atol=FEATURES_ATOL)
    # Pure red and pure blue must not give the same features (the channel order matters).
    assert np.abs(reference[2] - reference[3]).max() > 1e-2


@pytest.mark.slow
def test_backbone_io_names_dtypes_and_shapes(backbone_onnx_path, backbone_frames):
    model = onnx.load(str(backbone_onnx_path))
    onnx.checker.check_model(model, full_check=True)
    summary = model_io_summary(model)

    assert summary["inputs"] == [{"name": "image", "dtype": "uint8", "shape": ["N", 224, 224, 3]}]
    assert summary["outputs"] == [{"name": "features", "dtype": "float32", "shape": ["N", 2048]}]
    assert summary["opsets"]["ai.onnx"] == 15
    # Only standard operators: nothing fused for (or by) one CPU.
    assert {node.domain for node in model.graph.node} <= {""}
    # The uint8 input is cast inside the graph: the caller never does arithmetic.
    (first_consumer,) = [node for node in model.graph.node if "image" in node.input]
    assert first_consumer.op_type == "Cast"

    session = ort.InferenceSession(str(backbone_onnx_path), providers=["CPUExecutionProvider"])
    for batch in (1, 3):
        (features,) = session.run(["features"], {"image": backbone_frames[:batch]})
        assert features.shape == (batch, 2048)
        assert features.dtype == np.float32


def test_preprocessing_in_graph_is_exactly_preprocess_input(tmp_path):
    """Export the serving function around an identity model: the graph is then nothing but
    the preprocessing, and must equal keras' preprocess_input (caffe: RGB->BGR, minus means)."""
    import keras

    identity = keras.Sequential([keras.Input((224, 224, 3)), keras.layers.Identity()])
    path = export_backbone(identity, tmp_path / "preprocess.onnx")
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 256, size=(3, 224, 224, 3), dtype=np.uint8)
    frames[0] = 0  # a constant frame: the output is minus the means, channel by channel

    exported = _onnx_features(path, frames)
    reference = keras.applications.resnet50.preprocess_input(frames.astype(np.float32))

    np.testing.assert_allclose(exported, reference, rtol=0, atol=1e-5)
    np.testing.assert_allclose(exported[0, 0, 0], -CAFFE_BGR_MEANS, rtol=0, atol=1e-5)
    np.testing.assert_allclose(exported[1, ..., 0], frames[1, ..., 2] - CAFFE_BGR_MEANS[0], rtol=0, atol=1e-4)


@pytest.mark.slow
def test_cached_backbone_reuses_the_converted_file(backbone_onnx_path):
    written_at = backbone_onnx_path.stat().st_mtime_ns

    again = cached_backbone("none", backbone_onnx_path.parent, seed=0)

    assert again == backbone_onnx_path
    assert again.stat().st_mtime_ns == written_at  # not converted a second time
    assert not list(backbone_onnx_path.parent.glob("*.tmp-*"))
    key = backbone_cache_key("none", seed=0)
    assert key in backbone_onnx_path.name
    assert backbone_cache_key("none", seed=1) != key
    assert backbone_cache_key("none", seed=0, opset=13) != key
    assert backbone_cache_key("imagenet", seed=0) != key


@pytest.mark.slow
def test_same_seed_gives_identical_weights(keras_backbone):
    again = build_keras_backbone("none", seed=0)

    weights, weights_again = keras_backbone.get_weights(), again.get_weights()
    assert len(weights) == len(weights_again) == len(keras_backbone.weights)
    for first, second in zip(weights, weights_again, strict=True):
        np.testing.assert_array_equal(first, second)


@pytest.mark.slow
def test_h5_weights_file_loads_the_same_weights(keras_backbone, tmp_path, backbone_frames):
    weights_file = tmp_path / "resnet50_notop.weights.h5"
    keras_backbone.save_weights(str(weights_file))

    loaded = build_keras_backbone(str(weights_file), seed=99)  # the seed must not matter here

    for first, second in zip(keras_backbone.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(first, second)
    label = weights_label(str(weights_file))
    assert label.startswith("resnet50_notop.weights.h5@sha256:")
    assert len(label.split(":")[-1]) == 12


def test_missing_h5_file_raises_configuration_error(tmp_path):
    missing = tmp_path / "nowhere" / "resnet50_notop.h5"

    with pytest.raises(ConfigurationError) as raised:
        build_keras_backbone(str(missing))
    assert str(missing) in str(raised.value)
    assert "--weights none" in str(raised.value)
    with pytest.raises(ConfigurationError):
        weights_label(str(missing))
    with pytest.raises(ConfigurationError):
        cached_backbone(str(missing), tmp_path / "cache")


def test_weights_spec_that_is_not_an_h5_path_raises_configuration_error(tmp_path):
    not_h5 = tmp_path / "weights.bin"
    not_h5.write_bytes(b"\0" * 16)

    with pytest.raises(ConfigurationError) as raised:
        build_keras_backbone(str(not_h5))
    assert "weights.bin" in str(raised.value)


def test_corrupt_h5_file_raises_configuration_error(tmp_path):
    corrupt = tmp_path / "resnet50_notop.h5"
    corrupt.write_bytes(b"this is not an HDF5 file")

    with pytest.raises(ConfigurationError) as raised:
        build_keras_backbone(str(corrupt))
    assert str(corrupt) in str(raised.value)


@pytest.mark.slow
def test_hdf5_file_of_another_layout_raises_configuration_error(tmp_path):
    import h5py

    other = tmp_path / "not_resnet50_notop.h5"
    with h5py.File(other, "w") as handle:
        handle.create_dataset("dense/kernel", data=np.zeros((4, 2), np.float32))

    with pytest.raises(ConfigurationError) as raised:
        build_keras_backbone(str(other))
    assert str(other) in str(raised.value)


def test_weights_label_names_builtin_specs():
    assert weights_label("imagenet") == "imagenet"
    assert weights_label("none") == "none"


@pytest.mark.slow
def test_imagenet_without_network_raises_configuration_error(monkeypatch):
    """The real download path, pointed at a closed port on 127.0.0.1 through the standard
    proxy variables: fails at once, no traffic leaves the machine, nothing is faked."""
    # Where Keras caches downloads (its keras_home() is private).
    cached = Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser()
    if (cached / "models" / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5").exists():
        pytest.skip("ImageNet weights are cached locally: the offline path cannot be reached")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    for variable in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(variable, f"http://127.0.0.1:{closed_port}")
    for variable in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(variable, raising=False)

    try:
        with pytest.raises(ConfigurationError) as raised:
            build_keras_backbone("imagenet")
    finally:
        # urllib builds its global opener once, with the proxies of that moment, and keeps it:
        # drop it, or every later urlopen in this process goes to the closed port above.
        urllib.request.install_opener(None)
    assert "--weights none" in str(raised.value)
