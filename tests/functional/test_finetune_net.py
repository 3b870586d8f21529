"""Fine-tuning's Keras side on the real ResNet50: the split is the backbone, training moves only the top.

The top is rebuilt from the backbone's own layers after the split; these tests pin that the
rebuilt path computes exactly what the whole backbone computes, that training changes the top's
weights and nothing else (not even the model it was copied from), and that the frozen part is
cached per frame and view.
"""

from __future__ import annotations

import numpy as np
import pytest

from export.backbone import keras_features
from training.fit.augment import DEFAULT_AUGMENTATION
from training.fit.finetune_net import (
    STAGE_INPUTS,
    TrainableTop,
    TuneSettings,
    copy_backbone,
)
from training.fit.frozen_part import frozen_activations

pytestmark = pytest.mark.slow
SHAS = [f"{i:064x}" for i in range(8)]


@pytest.fixture(scope="module")
def activations(keras_backbone, backbone_frames, tmp_path_factory):
    cache = tmp_path_factory.mktemp("activations")
    return frozen_activations(
        keras_backbone, backbone_frames, SHAS, from_stage="conv5", views=2, backbone_key="none|seed 0",
        augmentation=DEFAULT_AUGMENTATION, seed=0, cache_dir=cache,
    ), cache  # fmt: skip


def test_the_split_top_computes_what_the_whole_backbone_computes(
    keras_backbone, backbone_frames, activations
):
    acts, _ = activations
    copy = copy_backbone(keras_backbone)
    top = TrainableTop(copy, "conv5", 3, multilabel=False, dropout=0.5)
    whole = keras_features(keras_backbone, backbone_frames)
    # The frozen part's output is stored as float16 (~3 significant digits): that bounds the gap.
    np.testing.assert_allclose(
        top.pooled_features(acts[0]), whole, rtol=2e-2, atol=2e-2 * np.abs(whole).max()
    )


def test_frozen_part_is_cached_per_frame_and_view(keras_backbone, backbone_frames, activations):
    acts, cache = activations
    assert acts.shape == (2, 8, 14, 14, 1024) and acts.dtype == np.float16
    assert len(list((cache / "activations").glob("*.npy"))) == 16
    calls = []
    again = frozen_activations(
        keras_backbone, backbone_frames, SHAS, from_stage="conv5", views=2, backbone_key="none|seed 0",
        augmentation=DEFAULT_AUGMENTATION, seed=0, cache_dir=cache, progress=lambda done, total: calls.append(done),
    )  # fmt: skip
    assert calls == []  # nothing computed
    np.testing.assert_array_equal(again, acts)
    assert not np.array_equal(acts[0], acts[1])  # view 1 is an augmented copy


def test_training_moves_the_top_only_and_never_the_source_model(keras_backbone, activations):
    acts, _ = activations
    before_source = [w.copy() for w in keras_backbone.get_weights()]
    copy = copy_backbone(keras_backbone)
    names = [layer.name for layer in copy.layers]
    split = names.index(STAGE_INPUTS["conv5"])
    frozen_before = [w.copy() for layer in copy.layers[: split + 1] for w in layer.get_weights()]
    top = TrainableTop(copy, "conv5", 3, multilabel=False, dropout=0.5)
    top_before = [w.copy() for w in copy.get_layer("conv5_block3_3_conv").get_weights()]

    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    run = top.fit(acts, y, np.arange(6), np.arange(6, 8), TuneSettings(epochs=2, patience=5, batch_size=4))

    assert [row["epoch"] for row in run.history] == [1, 2] and run.frames_trained == 12
    assert all(np.isfinite(row["loss"]) and "val_loss" in row for row in run.history)
    assert 1 <= run.best_epoch <= 2
    top_after = copy.get_layer("conv5_block3_3_conv").get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(top_before, top_after, strict=True))
    frozen_after = [w for layer in copy.layers[: split + 1] for w in layer.get_weights()]
    assert all(np.array_equal(a, b) for a, b in zip(frozen_before, frozen_after, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(before_source, keras_backbone.get_weights(), strict=True))

    top.reset(0)  # back to the backbone's weights
    reset = copy.get_layer("conv5_block3_3_conv").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(top_before, reset, strict=True))


def test_an_unknown_stage_is_refused_naming_the_choices():
    from functions.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="conv5"):
        TuneSettings(from_stage="conv9")


def test_recalibration_sets_batch_norm_statistics_to_the_frames_own(keras_backbone, activations):
    """The first trained BatchNorm's moving mean/variance become its input's, over every chunk."""
    acts, _ = activations
    copy = copy_backbone(keras_backbone)
    top = TrainableTop(copy, "conv5", 3, multilabel=False, dropout=0.5)
    batch_norm = copy.get_layer("conv5_block1_1_bn")
    # Its input: conv5_block1_1_conv applied to the split's output (the cached activations).
    inputs = np.asarray(copy.get_layer("conv5_block1_1_conv")(acts[0].astype(np.float32)))
    assert not np.allclose(batch_norm.moving_mean.numpy(), inputs.mean(axis=(0, 1, 2)), atol=1e-2)

    top.recalibrate(acts[0], chunk=4)  # two chunks of four frames, equal weight

    chunk_means = [inputs[i : i + 4].mean(axis=(0, 1, 2)) for i in (0, 4)]
    chunk_vars = [inputs[i : i + 4].var(axis=(0, 1, 2)) for i in (0, 4)]
    scale = np.abs(inputs).max()
    np.testing.assert_allclose(
        batch_norm.moving_mean.numpy(), np.mean(chunk_means, axis=0), atol=1e-4 * scale
    )
    np.testing.assert_allclose(
        batch_norm.moving_variance.numpy(), np.mean(chunk_vars, axis=0), rtol=1e-3, atol=1e-4 * scale**2
    )
    assert batch_norm.momentum == 0.99  # restored


def test_a_run_without_validation_recalibrates_once_at_the_end(keras_backbone, activations, monkeypatch):
    """Training reads each batch's own statistics, so only the end needs the moving ones: the
    final run (no validation) recomputes them once, from the trained weights, not every epoch."""
    acts, _ = activations
    copy = copy_backbone(keras_backbone)
    top = TrainableTop(copy, "conv5", 3, multilabel=False, dropout=0.5)
    calls = []
    recalibrate = top.recalibrate
    monkeypatch.setattr(top, "recalibrate", lambda *a, **k: (calls.append(1), recalibrate(*a, **k)))
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])

    run = top.fit(acts, y, np.arange(8), None, TuneSettings(epochs=3, batch_size=4, compute="float32"))

    assert len(calls) == 1 and [r["epoch"] for r in run.history] == [1, 2, 3] and run.best_epoch == 3
    batch_norm = copy.get_layer("conv5_block1_1_bn")
    inputs = np.asarray(copy.get_layer("conv5_block1_1_conv")(acts[0].astype(np.float32)))
    np.testing.assert_allclose(
        batch_norm.moving_mean.numpy(), inputs.mean(axis=(0, 1, 2)), atol=1e-4 * np.abs(inputs).max()
    )


def test_bfloat16_training_ends_in_the_float32_layers_with_their_own_statistics(keras_backbone, activations):
    """The twin trains in mixed bfloat16; the copy's float32 layers get its weights, then BatchNorm
    statistics recomputed in float32; a second run (no recompile) starts from the backbone again."""
    acts, _ = activations
    copy = copy_backbone(keras_backbone)
    top = TrainableTop(copy, "conv5", 3, multilabel=False, dropout=0.5, compute="mixed_bfloat16")
    assert top.trained[0] is not top.layers[0] and top.trained[0].dtype_policy.name == "mixed_bfloat16"
    assert top.layers[0].dtype_policy.name == "float32"
    before = copy.get_layer("conv5_block3_3_conv").get_weights()[0].copy()
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    settings = TuneSettings(epochs=2, patience=5, batch_size=4, compute="mixed_bfloat16")

    first = top.fit(acts, y, np.arange(6), np.arange(6, 8), settings)

    twin = {layer.name: layer for layer in top.trained}
    for layer in top.layers:  # the float32 layers hold the twin's trained weights
        if layer.__class__.__name__ == "Conv2D":
            for mine, trained in zip(layer.get_weights(), twin[layer.name].get_weights(), strict=True):
                np.testing.assert_array_equal(mine, trained)
    assert not np.array_equal(copy.get_layer("conv5_block3_3_conv").get_weights()[0], before)
    batch_norm = copy.get_layer("conv5_block1_1_bn")
    inputs = np.asarray(copy.get_layer("conv5_block1_1_conv")(acts[0, :6].astype(np.float32)))
    np.testing.assert_allclose(
        batch_norm.moving_mean.numpy(), inputs.mean(axis=(0, 1, 2)), atol=1e-4 * np.abs(inputs).max()
    )
    features = top.pooled_features(acts[0])
    assert features.dtype == np.float32 and np.isfinite(features).all()
    second = top.fit(acts, y, np.arange(6), np.arange(6, 8), settings)
    assert second.history[0]["loss"] == pytest.approx(first.history[0]["loss"], rel=0.05)


def test_compute_auto_is_bfloat16_only_where_the_cpu_has_it():
    from training.fit.finetune_net import cpu_has_bfloat16

    assert cpu_has_bfloat16(frozenset({"avx512f", "avx512_bf16"}))
    assert cpu_has_bfloat16(frozenset({"amx_bf16"}))
    assert not cpu_has_bfloat16(frozenset({"avx512f", "avx512_vnni"}))
    expected = "mixed_bfloat16" if cpu_has_bfloat16() else "float32"
    assert TuneSettings().compute_dtype() == expected
    assert TuneSettings(compute="float32").compute_dtype() == "float32"
    from functions.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="mixed_bfloat16"):
        TuneSettings(compute="float16")
