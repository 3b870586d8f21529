"""Cross-validation, thresholds and the int8 guard on real LightGBM, with constructed data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification

from training.data.loading import DatasetError
from training.fit.crossval import cross_validate
from training.fit.lightgbm import fit_final
from training.fit.thresholds import choose_thresholds, precision_guard

LABELS = ["bus", "car", "empty"]
# Small and quick: real LightGBM, fewer trees than the default.
FAST = {"n_estimators": 40}


def _data(n=90, n_features=40, classes=3, seed=0):
    features, y = make_classification(
        n_samples=n,
        n_features=n_features,
        n_informative=8,
        n_redundant=4,
        n_classes=classes,
        n_clusters_per_class=1,
        class_sep=2.0,
        random_state=seed,
    )
    # Near-duplicate groups of 3 consecutive frames, as dhash_groups would give for bursts.
    groups = np.arange(n) // 3
    return features.astype(np.float32), y, groups


@pytest.fixture(scope="module")
def multiclass_cv():
    features, y, groups = _data()
    return cross_validate(features, y, groups, LABELS, folds=3, seed=0, params=FAST, progress=False)


def test_same_seed_gives_identical_results(multiclass_cv):
    features, y, groups = _data()
    again = cross_validate(features, y, groups, LABELS, folds=3, seed=0, params=FAST, progress=False)
    np.testing.assert_array_equal(again.oof_probabilities, multiclass_cv.oof_probabilities)
    np.testing.assert_array_equal(again.fold_of, multiclass_cv.fold_of)
    assert again.mean == multiclass_cv.mean
    assert again.thresholds == multiclass_cv.thresholds


def test_another_seed_gives_other_folds(multiclass_cv):
    features, y, groups = _data()
    other = cross_validate(features, y, groups, LABELS, folds=3, seed=1, params=FAST, progress=False)
    assert not np.array_equal(other.fold_of, multiclass_cv.fold_of)


def test_folds_never_split_a_group_and_cover_every_frame(multiclass_cv):
    _, y, groups = _data()
    assert set(multiclass_cv.fold_of.tolist()) == {0, 1, 2}
    for group in np.unique(groups):
        assert len(set(multiclass_cv.fold_of[groups == group].tolist())) == 1, f"group {group} split"
    # stratified: every fold validates every label
    for fold in range(3):
        assert set(y[multiclass_cv.fold_of == fold].tolist()) == {0, 1, 2}


def test_metrics_shape_and_quality(multiclass_cv):
    cv = multiclass_cv
    assert cv.task == "multiclass"
    assert len(cv.fold_metrics) == 3
    assert sum(fold.n_valid for fold in cv.fold_metrics) == 90
    assert cv.oof_probabilities.dtype == np.float32 and cv.oof_probabilities.shape == (90, 3)
    np.testing.assert_allclose(cv.oof_probabilities.sum(axis=1), 1.0, atol=1e-5)
    # well separated synthetic classes: the head must learn them
    assert cv.mean["accuracy"] >= 0.85
    assert cv.mean["roc_auc"] >= 0.95
    assert np.array(cv.pooled["confusion"]).sum() == 90
    assert set(cv.per_class) == set(LABELS)
    for label in LABELS:
        assert set(cv.per_class[label]) == {"precision", "recall", "f1", "support"}
    # pooled accuracy agrees with the confusion matrix
    confusion = np.array(cv.pooled["confusion"])
    assert cv.pooled["accuracy"] == pytest.approx(np.trace(confusion) / confusion.sum())
    summary = cv.summary()
    assert summary["folds"] == 3 and summary["params"]["deterministic"] is True
    assert summary["params"]["random_state"] == 0


def test_binary_task_uses_the_second_label_as_positive():
    features, y, groups = _data(n=60, classes=2, seed=3)
    cv = cross_validate(
        features, y, groups, ["empty", "vehicle"], folds=3, seed=0, params=FAST, progress=False
    )
    assert cv.task == "binary"
    assert cv.oof_probabilities.shape == (60, 2)
    from sklearn.metrics import roc_auc_score

    assert cv.pooled["roc_auc"] == pytest.approx(roc_auc_score(y, cv.oof_probabilities[:, 1]))


def test_too_few_images_of_a_label_names_the_label():
    features, y, groups = _data()
    keep = np.r_[np.flatnonzero(y != 2), np.flatnonzero(y == 2)[:2]]
    with pytest.raises(DatasetError, match="'empty'"):
        cross_validate(features[keep], y[keep], np.arange(len(keep)), LABELS, folds=3, progress=False)


def test_too_few_distinct_groups_of_a_label_names_the_label():
    features, y, groups = _data()
    groups = groups.copy()
    groups[y == 1] = 10_000 + (np.arange((y == 1).sum()) % 2)  # every car in 2 groups only
    with pytest.raises(DatasetError, match="'car'.*2 distinct"):
        cross_validate(features, y, groups, LABELS, folds=3, progress=False)


def test_fit_final_trains_on_all_frames_in_float32():
    features, y, _ = _data()
    model = fit_final(features.astype(np.float64), y, FAST, seed=0)
    assert list(model.classes_) == [0, 1, 2]
    assert model.n_features_in_ == 40
    assert (model.predict(features) == y).mean() >= 0.95
    again = fit_final(features, y, FAST, seed=0)
    np.testing.assert_array_equal(model.predict_proba(features), again.predict_proba(features))


# --- thresholds ------------------------------------------------------------------------------


def _rows(top_label: int, confidences: list[float], n_labels: int) -> np.ndarray:
    rows = np.zeros((len(confidences), n_labels), dtype=np.float32)
    for i, p in enumerate(confidences):
        rows[i, :] = (1 - p) / (n_labels - 1)
        rows[i, top_label] = p
    return rows


def _threshold_example():
    labels = ["a", "b", "c", "d"]
    # a: precision by descending confidence 1, 1, 2/3, 3/4, 4/5, 4/6 (not monotone)
    a = _rows(0, [0.95, 0.90, 0.85, 0.80, 0.70, 0.60], 4)
    a_truth = [0, 0, 1, 0, 0, 1]
    # b: every prediction right
    b = _rows(1, [0.90, 0.60], 4)
    b_truth = [1, 1]
    # c: the target is out of reach; F1 peaks when the top three are accepted
    c = _rows(2, [0.60, 0.55, 0.50, 0.45, 0.40], 4)
    c_truth = [0, 2, 2, 0, 1]
    # d: never predicted
    return np.vstack([a, b, c]), np.array(a_truth + b_truth + c_truth), labels


def test_thresholds_follow_the_precision_rule_with_fallbacks():
    probabilities, y, labels = _threshold_example()
    result = choose_thresholds(probabilities, y, labels, target_precision=0.95)
    by_label = {rule.label: rule for rule in result.per_label}

    assert by_label["a"].method == "precision_target"
    assert by_label["a"].threshold == pytest.approx(0.90)
    assert (by_label["a"].accepted, by_label["a"].predicted, by_label["a"].precision) == (2, 6, 1.0)

    assert by_label["b"].method == "precision_target"
    assert by_label["b"].threshold == 0.0  # every prediction already precise: no threshold

    assert by_label["c"].method == "max_f1"
    assert by_label["c"].threshold == pytest.approx(0.50)
    assert by_label["c"].precision == pytest.approx(2 / 3) and by_label["c"].recall == 1.0

    assert by_label["d"].method == "no_predictions" and by_label["d"].threshold == 1.0

    # accepted: a 2 (right), b 2 (right), c 3 (2 right) of 13 frames
    assert result.coverage == pytest.approx(7 / 13)
    assert result.covered_accuracy == pytest.approx(6 / 7)
    assert result.as_dict() == {rule.label: rule.threshold for rule in result.per_label}


def test_a_lower_target_takes_the_lowest_threshold_reaching_it():
    probabilities, y, labels = _threshold_example()
    result = choose_thresholds(probabilities, y, labels, target_precision=0.75)
    rule = result.per_label[0]
    # sets reaching 0.75: top 1, 2, 4, 5 -> the largest (5 frames) is the lowest threshold
    assert rule.threshold == pytest.approx(0.70)
    assert (rule.accepted, rule.precision) == (5, pytest.approx(0.8))


def test_frame_at_the_threshold_is_accepted_by_decide():
    from functions.frames.decision import decide

    probabilities, y, labels = _threshold_example()
    thresholds = choose_thresholds(probabilities, y, labels).as_dict()
    decisions = decide(probabilities, labels, thresholds)
    assert decisions[1].label == "a"  # confidence 0.90 == threshold
    assert decisions[2].label == "unknown"  # 0.85 < 0.90


# --- int8 guard ------------------------------------------------------------------------------


def _binary_probabilities():
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(100, int), np.zeros(100, int)]
    positive = np.r_[rng.uniform(0.6, 0.9, 90), np.full(10, 0.4), rng.uniform(0.1, 0.3, 100)]
    return y, np.c_[1 - positive, positive]


def test_guard_passes_identical_predictions():
    y, fp32 = _binary_probabilities()
    result = precision_guard(fp32, fp32.copy(), y)
    assert result.passed
    assert result.agreement == 1.0 and result.roc_auc_drop == 0.0


def test_guard_fails_when_labels_disagree():
    y, fp32 = _binary_probabilities()
    int8 = fp32.copy()
    int8[:2] = int8[:2, ::-1]  # 2 of 200 labels flip: 99.0 % agreement
    result = precision_guard(fp32, int8, y)
    assert not result.passed
    assert result.agreement == pytest.approx(0.99)
    assert "agree" in result.reason


def test_guard_fails_when_auc_drops_with_the_same_labels():
    y, fp32 = _binary_probabilities()
    int8 = fp32.copy()
    int8[90:100] = [0.95, 0.05]  # the 10 missed positives now rank below every negative
    result = precision_guard(fp32, int8, y)
    assert result.agreement == 1.0
    assert result.roc_auc_drop == pytest.approx(10 * 100 / (100 * 100))
    assert not result.passed
    assert "ROC-AUC" in result.reason


# --- float32 thresholds ----------------------------------------------------------------------


def _one_ulp_data():
    """Two classes whose only feature differs by 1 ulp of float32.

    LightGBM splits at the float64 midpoint; rounded to the nearest float32 (what ONNX
    stores) that midpoint becomes the upper value itself, chosen so here (even mantissa).
    """
    lower = np.nextafter(np.float32(1.5), np.float32(2))  # odd mantissa: the tie rounds up
    upper = np.nextafter(lower, np.float32(2))
    midpoint = (float(lower) + float(upper)) / 2
    assert np.float32(midpoint) == upper  # the hazard this data is built to show
    rng = np.random.default_rng(0)
    noise = rng.uniform(0, 1, size=(60, 1)).astype(np.float32)  # a second, useless feature
    y = np.r_[np.zeros(30, int), np.ones(30, int)]
    features = np.c_[np.where(y == 1, upper, lower).astype(np.float32), noise]
    return features, y


def _onnx_trees_probabilities(classifier, features):
    import onnxruntime as ort

    from export.trees import lightgbm_to_onnx

    trees = lightgbm_to_onnx(classifier, features.shape[1], ["a", "b"])
    session = ort.InferenceSession(trees.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"features": features})[0]


def test_final_model_thresholds_are_exact_in_float32_onnx():
    features, y = _one_ulp_data()
    params = {"n_estimators": 5, "min_child_samples": 2, "colsample_bytree": 1.0}
    classifier = fit_final(features, y, params, seed=0)
    assert (classifier.predict(features) == y).all()
    onnx_probabilities = _onnx_trees_probabilities(classifier, features)
    np.testing.assert_allclose(onnx_probabilities, classifier.predict_proba(features), atol=1e-6)
    assert (onnx_probabilities.argmax(axis=1) == y).all()


def test_unsnapped_thresholds_would_flip_in_onnx():
    """Why fit_final snaps: the raw LightGBM model and its ONNX form disagree on this data."""
    from training.fit.lightgbm import fit_lightgbm, resolve_params

    features, y = _one_ulp_data()
    params = resolve_params({"n_estimators": 5, "min_child_samples": 2, "colsample_bytree": 1.0}, 0)
    raw = fit_lightgbm(features, y, params)
    assert (raw.predict(features) == y).all()
    onnx_labels = _onnx_trees_probabilities(raw, features).argmax(axis=1)
    assert (onnx_labels[y == 1] == 0).all()  # every upper value goes the wrong way in float32


def test_cross_fitting_gives_each_fold_its_own_features_from_its_training_frames_only():
    """fold_features(fold, train_idx): called once per fold, with exactly that fold's training frames."""
    from training.fit.folds import grouped_folds

    features, y, groups = _data()
    calls = []

    def fold_features(fold, train_idx):
        calls.append((fold, np.sort(train_idx)))
        return features  # the same features every fold: the result must equal the plain CV's

    crossfit = cross_validate(
        features, y, groups, LABELS, folds=3, seed=0, params=FAST, progress=False, fold_features=fold_features
    )
    plain = cross_validate(features, y, groups, LABELS, folds=3, seed=0, params=FAST, progress=False)
    expected = grouped_folds(y, groups, folds=3, seed=0)
    assert [fold for fold, _ in calls] == [0, 1, 2]
    for (_, train_idx), (expected_train, expected_valid) in zip(calls, expected, strict=True):
        assert np.array_equal(train_idx, np.sort(expected_train))
        assert not set(train_idx) & set(expected_valid)
    assert np.array_equal(crossfit.fold_of, plain.fold_of)
    np.testing.assert_array_equal(crossfit.oof_probabilities, plain.oof_probabilities)


def test_cross_fitting_uses_the_folds_own_features_for_its_held_out_frames():
    """A fold whose features carry no signal predicts its held-out frames at chance; the others do not."""
    features, y, groups = _data()
    noise = np.random.default_rng(5).normal(size=features.shape).astype(np.float32)

    def fold_features(fold, train_idx):
        return noise if fold == 1 else features

    cv = cross_validate(
        features, y, groups, LABELS, folds=3, seed=0, params=FAST, progress=False, fold_features=fold_features
    )
    accuracy = {fold.fold: fold.accuracy for fold in cv.fold_metrics}
    assert accuracy[0] > 0.8 and accuracy[2] > 0.8
    assert accuracy[1] < 0.6
