"""Featurization through onnxruntime and its on-disk cache, with a tiny stand-in backbone.

The tiny ONNX graph has the backbone's contract (uint8 ``image`` [N,224,224,3] -> float32
``features`` [N,2048]) at a fraction of ResNet50's cost: per-channel means times a fixed
[3, 2048] matrix, so the expected features are known exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from functions.errors import ModelArtifactError
from training.features.featurize import featurize


def _tiny_backbone(path: Path, seed: int) -> np.ndarray:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(seed).normal(size=(3, 2048)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["image"], ["pixels"], to=TensorProto.FLOAT),
            helper.make_node("ReduceMean", ["pixels"], ["means"], axes=[1, 2], keepdims=0),
            helper.make_node("MatMul", ["means", "weights"], ["features"]),
        ],
        "tiny_backbone",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", 224, 224, 3])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 2048])],
        initializer=[numpy_helper.from_array(weights, "weights")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return weights


def _images(n: int, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    import hashlib

    pixels = np.random.default_rng(seed).integers(0, 256, size=(n, 224, 224, 3), dtype=np.uint8)
    return pixels, [hashlib.sha256(p.tobytes()).hexdigest() for p in pixels]


def _expected(pixels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return pixels.astype(np.float32).mean(axis=(1, 2)) @ weights


@pytest.fixture()
def backbone(tmp_path):
    path = tmp_path / "backbone.onnx"
    return path, _tiny_backbone(path, seed=0)


def test_features_come_from_the_backbone(backbone, tmp_path):
    path, weights = backbone
    pixels, shas = _images(5)
    result = featurize(pixels, shas, path, cache_dir=tmp_path / "cache", batch_size=2, progress=False)
    assert result.features.dtype == np.float32 and result.features.shape == (5, 2048)
    np.testing.assert_allclose(result.features, _expected(pixels, weights), rtol=1e-4, atol=1e-3)
    assert (result.computed, result.cache_hits) == (5, 0)


def test_second_call_featurizes_nothing(backbone, tmp_path):
    path, _ = backbone
    pixels, shas = _images(4)
    first = featurize(pixels, shas, path, cache_dir=tmp_path, progress=False)
    second = featurize(pixels, shas, path, cache_dir=tmp_path, progress=False)
    assert (second.computed, second.cache_hits) == (0, 4)
    np.testing.assert_array_equal(second.features, first.features)


def test_a_new_image_featurizes_only_that_image(backbone, tmp_path):
    path, weights = backbone
    pixels, shas = _images(4)
    featurize(pixels[:3], shas[:3], path, cache_dir=tmp_path, progress=False)
    result = featurize(pixels, shas, path, cache_dir=tmp_path, progress=False)
    assert (result.computed, result.cache_hits) == (1, 3)
    np.testing.assert_allclose(result.features, _expected(pixels, weights), rtol=1e-4, atol=1e-3)


def test_another_backbone_misses_the_cache(backbone, tmp_path):
    path, _ = backbone
    other_path = tmp_path / "other.onnx"
    other_weights = _tiny_backbone(other_path, seed=1)
    pixels, shas = _images(3)
    featurize(pixels, shas, path, cache_dir=tmp_path / "cache", progress=False)
    result = featurize(pixels, shas, other_path, cache_dir=tmp_path / "cache", progress=False)
    assert (result.computed, result.cache_hits) == (3, 0)
    np.testing.assert_allclose(result.features, _expected(pixels, other_weights), rtol=1e-4, atol=1e-3)
    assert len(list((tmp_path / "cache" / "features").iterdir())) == 2  # one store per backbone


def test_duplicate_content_is_featurized_once(backbone, tmp_path):
    path, _ = backbone
    pixels, shas = _images(2)
    pixels = np.concatenate([pixels, pixels[:1]])
    shas = [*shas, shas[0]]
    result = featurize(pixels, shas, path, cache_dir=tmp_path, progress=False)
    assert (result.computed, result.cache_hits) == (2, 1)
    np.testing.assert_array_equal(result.features[2], result.features[0])


def test_a_damaged_cache_entry_is_featurized_again(backbone, tmp_path):
    path, weights = backbone
    pixels, shas = _images(2)
    featurize(pixels, shas, path, cache_dir=tmp_path, progress=False)
    (entry,) = (tmp_path / "features").glob(f"*/{shas[0][:2]}/{shas[0]}.npy")
    entry.write_bytes(entry.read_bytes()[:100])  # truncated, as by a full disk
    result = featurize(pixels, shas, path, cache_dir=tmp_path, progress=False)
    assert (result.computed, result.cache_hits) == (1, 1)
    np.testing.assert_allclose(result.features, _expected(pixels, weights), rtol=1e-4, atol=1e-3)
    assert not list(tmp_path.rglob("*.tmp"))  # atomic writes leave no temporary files


def test_a_missing_backbone_is_a_clear_error(tmp_path):
    pixels, shas = _images(1)
    with pytest.raises(ModelArtifactError, match="missing.onnx"):
        featurize(pixels, shas, tmp_path / "missing.onnx", cache_dir=tmp_path, progress=False)
