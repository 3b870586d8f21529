"""Classifier heads (lightgbm, logistic, calibrated linear SVM, auto): same folds, the choice and
its reason, and every head as ONNX inside one graph, against its own predict_proba."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from export.merge import merge_backbone_and_trees
from export.parity import PROBABILITIES_ATOL, check_tree_parity
from functions.frames.manifest import INPUT_NAME
from tests.functional.test_multilabel_export import backbone_features, frames, tiny_backbone
from training.fit.heads import HEADS, choose_head, cross_validate_heads, fit_head, head_to_onnx

SMALL = {"n_estimators": 30, "num_leaves": 4, "min_child_samples": 3}


def single_label_data(n_classes: int, n: int = 150, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    features = rng.normal(0, 1, (n, 16)).astype(np.float32)
    features[np.arange(n), y] += 2.0
    features += 3.0  # positive, like pooled ReLU features
    return features, y, np.arange(n), [f"l{k}" for k in range(n_classes)]


@pytest.mark.slow  # 8 s each: three heads x three folds
@pytest.mark.parametrize("n_classes", [2, 3])
def test_auto_cross_validates_every_head_on_the_same_folds(n_classes):
    features, y, groups, labels = single_label_data(n_classes)
    task = "binary" if n_classes == 2 else "multiclass"
    cvs = cross_validate_heads(
        "auto", task, features, y, groups, labels, folds=3, seed=0, params=SMALL, progress=False
    )
    assert list(cvs) == list(HEADS)
    first = cvs["lightgbm"].fold_of
    assert all(np.array_equal(cv.fold_of, first) for cv in cvs.values())
    chosen, reason = choose_head("auto", cvs)
    losses = {name: cv.mean["log_loss"] for name, cv in cvs.items()}
    assert chosen == min(losses, key=losses.get)
    assert "lowest out-of-fold log loss" in reason and all(name in reason for name in HEADS)
    # the data are linear: a linear head beats 30 small trees here
    assert chosen in ("logistic", "svm")


@pytest.mark.slow  # 16 s: three heads x three labels x three folds on 2048 features
def test_multilabel_auto_and_a_named_head():
    images, y = frames(90, seed=1)
    features = backbone_features(tiny_backbone(), images)
    labels = ["bus", "car", "night"]
    cvs = cross_validate_heads(
        "auto",
        "multilabel",
        features,
        y,
        np.arange(90),
        labels,
        folds=3,
        seed=0,
        params=SMALL,
        progress=False,
    )
    assert list(cvs) == list(HEADS)
    assert all(np.array_equal(cv.fold_of, cvs["svm"].fold_of) for cv in cvs.values())
    assert choose_head("svm", cvs) == ("svm", "--head svm requested")


def test_svm_probabilities_come_from_calibration_not_margins():
    features, y, _, labels = single_label_data(2)
    model = fit_head("svm", "binary", features, y, labels)
    calibrated = model.steps[-1][1]
    assert type(calibrated).__name__ == "CalibratedClassifierCV" and calibrated.method == "sigmoid"
    assert len(calibrated.calibrated_classifiers_) == 3  # calibrated on folds of the data it was given
    assert type(model.steps[0][1]).__name__ == "Normalizer"  # L2-normalised features, as the Azure sample
    p = model.predict_proba(features)
    assert p.min() >= 0 and p.max() <= 1 and np.allclose(p.sum(axis=1), 1)


@pytest.mark.parametrize("name", HEADS)
@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_every_head_in_one_graph_matches_its_predict_proba(name, task, tmp_path):
    backbone = tiny_backbone()
    images, y_sets = frames(90, seed=2)
    features = backbone_features(backbone, images)
    if task == "multilabel":
        labels, y = ["bus", "car", "night"], y_sets
    else:
        labels, y = ["a", "b", "c"], np.arange(90) % 3
    head = fit_head(name, task, features, y, labels, params=SMALL)
    merged = merge_backbone_and_trees(backbone, head_to_onnx(name, task, head, features.shape[1], labels))
    path = tmp_path / "model.onnx"
    onnx.save(merged, str(path))
    unseen, _ = frames(24, seed=3)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probabilities, onnx_features = session.run(None, {INPUT_NAME: unseen})
    reference = head.predict_proba(onnx_features)
    assert probabilities.shape == (24, 3)
    assert np.abs(probabilities - reference).max() <= PROBABILITIES_ATOL  # explicit: 1e-4
    thresholds = dict.fromkeys(labels, 0.5) if task == "multilabel" else None
    figures = check_tree_parity(path, head, unseen, labels=labels, thresholds=thresholds)
    assert figures["labels_disagree"] == 0
