"""The familiarity description: its distance, the out-of-fold threshold, and what a frame far
from the training frames becomes (``unfamiliar``), on synthetic Gaussians with known answers."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from functions.errors import ModelArtifactError
from functions.familiarity import Familiarity, decode_array, encode_array, familiarity_of, is_unfamiliar
from functions.frames.decision import Decision, LabelSetDecision, decide, decide_labels, with_distances
from functions.frames.manifest import UNFAMILIAR_LABEL, Manifest
from functions.frames.outputs import (
    REGIONS_TAG,
    answer_fields,
    answer_summary,
    answer_tags,
    label_text,
    labels_tag_value,
    regions_tags,
)
from functions.frames.review import UNFAMILIAR_REASON, review_reason
from training.fit.familiarity import (
    calibrated_threshold,
    components_of,
    describe,
    detection_table,
    dims_for,
    fit_familiarity,
    training_prior,
)

DIMS = 64


def gaussians(n_per: int, seed: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Three components in DIMS dimensions: means 10 apart on the first axes, a shared covariance
    that varies mostly in 4 directions (std 3) and little elsewhere (std 0.5)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per)
    means = np.zeros((3, DIMS))
    means[np.arange(3), np.arange(3)] = 10.0
    scale = np.full(DIMS, 0.5)
    scale[3:7] = 3.0
    x = means[y] + rng.standard_normal((len(y), DIMS)) * scale
    x[:, -8:] += shift  # a shift along 8 directions the training frames barely vary in
    return x.astype(np.float32), y


def test_distance_is_the_mahalanobis_distance_of_the_ppca_covariance():
    x, y = gaussians(100, seed=0)
    f = fit_familiarity(x, y, dims=4)
    # The covariance the description stands for: kept directions with their variances, and the
    # residual variance in every other direction; its Mahalanobis distance to the nearest mean.
    basis = f.basis.astype(np.float64)
    covariance = basis.T @ np.diag(f.variances) @ basis + f.residual_variance * (
        np.eye(DIMS) - basis.T @ basis
    )
    precision = np.linalg.inv(covariance)
    queries = gaussians(5, seed=1, shift=3.0)[0].astype(np.float64)
    offsets = queries[:, None, :] - f.means[None, :, :].astype(np.float64)
    direct = np.sqrt(np.einsum("ncd,de,nce->nc", offsets, precision, offsets).min(axis=1) / DIMS)
    np.testing.assert_allclose(f.distances(queries), direct, rtol=1e-4)
    assert f.basis.shape == (4, DIMS) and f.means.shape == (3, DIMS)
    np.testing.assert_allclose(f.basis @ f.basis.T, np.eye(4), atol=1e-5)  # orthonormal directions


def test_kept_directions_are_the_ones_the_frames_vary_in():
    x, y = gaussians(200, seed=0)
    f = fit_familiarity(x, y, dims=4)
    # the four std-3 axes (3..6) carry the (unit) basis rows; variance ~9 there, ~0.25 elsewhere
    assert np.all((f.basis[:, 3:7] ** 2).sum(axis=1) > 0.95)
    assert f.variances.min() > 6.0 and f.variances.max() < 12.0
    assert 0.2 < f.residual_variance < 0.3


def test_threshold_calibrated_out_of_fold_at_the_false_alarm_rate():
    x, y = gaussians(100, seed=0)
    fold_of = np.arange(len(y)) % 3
    described = describe(x, y, fold_of, false_alarm_rate=0.01, dims=4)
    f = described.familiarity
    # 300 out-of-fold distances; the 0.99 quantile taken at the next value up leaves exactly 2 above
    assert f.threshold == float(np.sort(described.oof)[297])
    assert int(np.sum(described.oof > f.threshold)) == 2
    assert f.false_alarm_rate == 0.01
    # frames drawn afresh from the same Gaussians: about the calibrated share is called unfamiliar
    fresh, _ = gaussians(1000, seed=7)
    assert np.mean(f.unfamiliar(f.distances(fresh))) <= 0.03
    # the same frames moved 5 residual standard deviations along 8 axes off the training
    # subspace (d^2 grows by ~200 over ~64): all unfamiliar
    shifted, _ = gaussians(1000, seed=7, shift=2.5)
    assert np.all(f.unfamiliar(f.distances(shifted)))


def test_calibrated_threshold_takes_the_next_value_up():
    values = np.arange(1, 101, dtype=np.float64)  # 1..100
    assert calibrated_threshold(values, 0.01) == 100.0  # 0.99 of the way: between 99 and 100 -> 100
    assert calibrated_threshold(values, 0.05) == 96.0
    assert np.mean(values > calibrated_threshold(values, 0.05)) == 0.04


def test_detection_table_measures_auc_and_detection_at_both_rates():
    familiar = np.arange(100, dtype=np.float64)  # thresholds: 99 (1 %) and 95 (5 %)
    table = detection_table(
        familiar, {"far": np.full(10, 1000.0), "mixed": np.array([10.0, 96.0, 100.0, 200.0])}
    )
    assert table["far"] == {"auc": 1.0, "frames": 10, "detected_at_0.01": 1.0, "detected_at_0.05": 1.0}
    assert table["mixed"]["detected_at_0.01"] == 0.5 and table["mixed"]["detected_at_0.05"] == 0.75
    # AUC: the share of (familiar, unfamiliar) pairs ordered right, a tie counting half
    assert table["mixed"]["auc"] == pytest.approx((10.5 + 96.5 + 100 + 100) / 400)
    assert table["all"]["frames"] == 14


def test_dims_follow_the_smallest_fit():
    assert dims_for(np.arange(90) % 3) == 6  # 60 frames per out-of-fold fit -> 6 directions
    assert dims_for(np.arange(12) % 3) == 2  # never fewer than 2
    assert dims_for(np.arange(3000) % 5) == 32  # never more than 32


def test_components_are_labels_or_label_sets():
    np.testing.assert_array_equal(components_of(np.array([2, 0, 2])), [2, 0, 2])
    sets = np.array([[1, 0], [0, 0], [1, 0], [1, 1]], dtype=np.uint8)
    assert len(set(components_of(sets).tolist())) == 3
    assert components_of(sets)[0] == components_of(sets)[2]


def test_training_prior_counts_each_label_of_a_set():
    assert training_prior(np.array([0, 0, 1, 2]), ["bus", "car", "empty"]) == {
        "bus": 0.5,
        "car": 0.25,
        "empty": 0.25,
    }
    sets = np.array([[1, 1], [1, 0]], dtype=np.uint8)
    assert training_prior(sets, ["bus", "night"]) == {"bus": 2 / 3, "night": 1 / 3}


@cache
def _manifest_field() -> dict:
    x, y = gaussians(30, seed=0)
    return describe(x, y, np.arange(len(y)) % 3, dims=4).manifest_field(["bus", "car", "empty"], {"bus": 1.0})


def test_the_manifest_field_round_trips_through_float16():
    field = _manifest_field()
    f = Familiarity.from_manifest(field)
    assert f.means.dtype == np.float32 and f.means.shape == (3, DIMS)
    values = np.linspace(-3, 3, 12).reshape(3, 4)
    np.testing.assert_allclose(decode_array(encode_array(values)), values, rtol=1e-3)
    assert field["calibration"]["frames"] == 90 and field["prior"] == {"bus": 1.0}


@pytest.mark.parametrize(
    "change",
    [
        {"basis": None},
        {"variances": [1.0]},  # not one per direction
        {"threshold": 0.0},
        {"means": {"shape": [3, 4], "float16": "not base64!"}},
    ],
)
def test_a_malformed_description_is_refused_naming_the_manifest(change):
    field = _manifest_field() | change
    with pytest.raises(ModelArtifactError, match="model-dir/manifest.json"):
        Familiarity.from_manifest(field, "model-dir/manifest.json")


def test_old_manifests_have_no_familiarity_and_unfamiliar_is_reserved():
    base = {
        "labels": ["bus", "car"], "task": "binary", "thresholds": {"bus": 0.5, "car": 0.5}, "backbone": "x",
        "weights": "none", "precision": "fp32", "model_sha256": "a" * 64, "model_version": "v",
        "created_at": "2026-01-01T00:00:00Z", "input": {}, "format_version": 1,
    }  # fmt: skip
    assert familiarity_of(Manifest.from_dict(base)) is None  # written before familiarity existed
    with pytest.raises(ModelArtifactError, match="'unfamiliar' is reserved"):
        Manifest.from_dict(
            base | {"labels": ["bus", UNFAMILIAR_LABEL], "thresholds": {"bus": 0.5, UNFAMILIAR_LABEL: 0.5}}
        )


def test_one_label_far_from_the_training_frames_becomes_unfamiliar():
    labels, thresholds = ["bus", "car"], {"bus": 0.5, "car": 0.5}
    decisions = decide(np.array([[0.99, 0.01], [0.2, 0.8]], np.float32), labels, thresholds)
    near, far = with_distances(decisions, np.array([0.8, 3.5]), threshold=1.2)
    assert (near.label, near.distance) == ("bus", 0.8)
    assert (far.label, far.top_label, far.confidence) == (UNFAMILIAR_LABEL, "car", pytest.approx(0.8))
    answer = answer_fields(far)
    assert answer["label"] == UNFAMILIAR_LABEL and answer["distance"] == 3.5 and is_unfamiliar(answer)
    assert not is_unfamiliar(answer_fields(near))
    assert answer_tags(far, "v1") == {
        "camsort-label": "unfamiliar", "camsort-confidence": "0.8000", "camsort-model-version": "v1",
        "camsort-distance": "3.500",
    }  # fmt: skip
    assert review_reason(far, thresholds, margin=0.05) == UNFAMILIAR_REASON
    assert review_reason(near, thresholds, margin=0.05) is None


def test_a_label_set_far_from_the_training_frames_is_empty_and_marked():
    labels, thresholds = ["bus", "night"], {"bus": 0.5, "night": 0.5}
    (decision,) = decide_labels(np.array([[0.9, 0.9]], np.float32), labels, thresholds)
    (far,) = with_distances([decision], np.array([2.0]), threshold=1.0)
    assert isinstance(far, LabelSetDecision)
    assert (far.labels, far.unfamiliar, far.top_label) == ([], True, "bus")
    answer = answer_fields(far)
    assert answer["labels"] == [] and answer["unfamiliar"] is True and is_unfamiliar(answer)
    assert label_text(answer) == UNFAMILIAR_LABEL and labels_tag_value(far) == UNFAMILIAR_LABEL
    assert review_reason(far, thresholds, margin=0.0) == UNFAMILIAR_REASON
    # a region's label set: "unfamiliar" in the frame's summary and tag, not an empty set ("none")
    (near,) = with_distances([decision], np.array([0.5]), threshold=1.0)
    summary = {"bay": answer_summary(far), "sky": answer_summary(near)}
    assert summary == {"bay": UNFAMILIAR_LABEL, "sky": ["bus", "night"]}
    assert regions_tags(summary) == {REGIONS_TAG: "bay=unfamiliar sky=bus+night"}


def test_a_model_without_familiarity_keeps_the_old_answer_shape():
    decision = Decision("bus", 0.9, "bus", {"bus": 0.9, "car": 0.1})
    assert "distance" not in answer_fields(decision)
    assert "camsort-distance" not in answer_tags(decision, "v1")
