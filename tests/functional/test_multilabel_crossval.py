"""Multi-label cross-validation: grouped folds stratified on the label combination, thresholds,
metrics (real LightGBM on small synthetic features)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.data.loading import DatasetError
from training.fit.crossval import cross_validate_multilabel
from training.fit.folds import RARE, make_folds, stratification_classes
from training.fit.metrics import multilabel_metrics
from training.fit.thresholds import best_f1_threshold, multilabel_guard

LABELS = ["bus", "car", "night"]
PARAMS = {"n_estimators": 40, "num_leaves": 4, "min_child_samples": 3, "colsample_bytree": 0.5}


def data(n: int = 160, seed: int = 0, noise: float = 1.0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, 3)) < 0.4).astype(np.uint8)
    features = rng.normal(0, noise, (n, 12)).astype(np.float32)
    features[:, :3] += 2.5 * y  # one informative column per label
    groups = np.arange(n) // 2  # near-duplicate pairs
    y[1::2] = y[0::2]  # a pair shares its labels, as copies of one frame do
    features[1::2, :3] = features[0::2, :3] + rng.normal(0, 0.01, (n // 2, 3))
    return features, y, groups


def test_folds_keep_groups_together_and_cover_every_frame():
    _, y, groups = data()
    fold_of, strategy = make_folds(y, groups, 4, 0, LABELS)
    assert set(fold_of.tolist()) == {0, 1, 2, 3}
    for group in np.unique(groups):
        assert len(set(fold_of[groups == group].tolist())) == 1
    assert "stratified on the label combination" in strategy


def test_rare_combinations_fall_back_and_say_so():
    y = np.array([[1, 0, 0]] * 10 + [[0, 1, 0]] * 10 + [[1, 1, 1]] * 2 + [[0, 0, 1]] * 3, dtype=np.uint8)
    strata, rare = stratification_classes(y, folds=5)
    assert rare == ["001", "111"]
    assert set(strata[20:].tolist()) == {RARE}  # 5 pooled frames: enough for 5 folds
    # a pool smaller than the folds joins the most common combination
    strata, rare = stratification_classes(y[:22], folds=5)
    assert rare == ["111"] and set(strata[20:].tolist()) == {"100"}
    _, strategy = make_folds(y, np.arange(len(y)), 5, 0, LABELS)
    assert "fallback" in strategy and "{bus, car, night}" in strategy and "{night}" in strategy


def test_best_f1_threshold():
    p = np.array([0.9, 0.8, 0.7, 0.3, 0.2], dtype=np.float32)
    truth = np.array([1, 1, 0, 1, 0])
    # accept >= 0.3: tp 3, fp 1, fn 0 -> F1 6/7, better than >= 0.8 (tp 2, fn 1 -> 0.8)
    assert best_f1_threshold(p, truth) == pytest.approx(0.3)
    assert best_f1_threshold(p, np.zeros(5)) == 1.0


def test_metrics_by_hand():
    y = np.array([[1, 0], [1, 1], [0, 0], [0, 1]], dtype=np.uint8)
    predicted = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=np.uint8)
    probabilities = predicted * 0.8 + 0.1
    m = multilabel_metrics(y, probabilities, predicted, ["a", "b"])
    assert m["subset_accuracy"] == 0.5  # rows 0 and 3 entirely right
    assert m["hamming_loss"] == 2 / 8
    assert m["per_label"]["a"] == pytest.approx(
        {"precision": 1.0, "recall": 1.0, "f1": 1.0, "roc_auc": 1.0, "support": 2}
    )
    assert m["per_label"]["b"]["precision"] == 0.5 and m["per_label"]["b"]["recall"] == 0.5
    assert m["micro_f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))  # tp 3, fp 1, fn 1
    assert m["macro_f1"] == pytest.approx((1.0 + 0.5) / 2)


@pytest.fixture(scope="module")
def cv():
    features, y, groups = data()
    return cross_validate_multilabel(
        features, y, groups, LABELS, folds=4, seed=0, params=PARAMS, progress=False
    )


def test_cross_validation_learns_every_label(cv):
    assert cv.oof_probabilities.shape == (160, 3)
    assert (cv.fold_of >= 0).all()
    for label in LABELS:
        assert cv.per_label[label]["roc_auc"]["mean"] > 0.75  # measured 0.81-0.97 (80 distinct pairs)
        assert 0.0 < cv.thresholds[label] < 1.0
        assert cv.per_label[label]["f1"]["std"] >= 0.0
    assert cv.mean["micro_f1"] > 0.75 and cv.mean["hamming_loss"] < 0.2  # measured 0.85, 0.10
    assert 0.0 <= cv.mean["subset_accuracy"] <= 1.0 and len(cv.fold_metrics) == 4
    # the mean over folds really is the mean of the per-fold figures
    assert cv.mean["macro_f1"] == pytest.approx(np.mean([f["macro_f1"] for f in cv.fold_metrics]))


def test_same_seed_same_result(cv):
    features, y, groups = data()
    again = cross_validate_multilabel(
        features, y, groups, LABELS, folds=4, seed=0, params=PARAMS, progress=False
    )
    assert np.array_equal(again.oof_probabilities, cv.oof_probabilities)
    assert again.thresholds == cv.thresholds


def test_guard_agrees_with_itself_and_flags_a_worse_head(cv):
    assert multilabel_guard(cv, cv).passed
    features, y, groups = data(noise=4.0)  # much noisier features, same labels and folds
    worse = cross_validate_multilabel(
        features, y, groups, LABELS, params=PARAMS, fold_of=cv.fold_of, progress=False
    )
    guard = multilabel_guard(cv, worse)
    assert not guard.passed and "label sets" in guard.reason and guard.agreement < 0.995


def test_a_label_missing_from_a_training_part_is_a_clear_error():
    features, y, groups = data(n=40)
    y[:, 2] = 0
    y[:2, 2] = 1  # one pair holds "night": some fold's training part has none
    with pytest.raises(DatasetError, match="no frames with label 'night'"):
        cross_validate_multilabel(features, y, groups, LABELS, folds=4, params=PARAMS, progress=False)


def test_summary_is_json_safe(cv):
    import json

    text = json.dumps(cv.to_dict())
    assert "NaN" not in text and math.isfinite(cv.mean["log_loss"])


def test_report_files_tables_and_heads(cv, tmp_path):
    import io
    import json

    from rich.console import Console

    from training.report.tables import print_multilabel_tables
    from training.report.write import write_multilabel_report

    paths = write_multilabel_report(
        tmp_path,
        cv=cv,
        dataset_summary={"per_label_set": {"{}": 3}},
        neardup={"groups": 80},
        heads={"lightgbm": cv, "logistic": cv},
        head_reason="--head auto: lowest out-of-fold log loss",
    )
    assert sorted(p.name for p in paths.plots) == ["heads.png", "per_fold.png", "roc.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths.plots)
    report = json.loads(paths.json.read_text())
    assert report["task"] == "multilabel" and set(report["heads"]) == {"lightgbm", "logistic"}
    assert report["cross_validation"]["mean"]["micro_f1"] == pytest.approx(cv.mean["micro_f1"])
    page = paths.html.read_text()
    for text in (
        "Set metrics per fold",
        "Per label",
        "Classifier heads (same folds)",
        "roc.png",
        "Hamming loss",
    ):
        assert text in page
    buffer = io.StringIO()
    print_multilabel_tables(cv, Console(file=buffer, width=80, color_system=None), heads={"a": cv, "b": cv})
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "mean±sd" in buffer.getvalue() and "…" not in "".join(
        lines[:14]
    )  # the set table does not truncate
