"""The training report: report.json schema, the PNG plots, report.html and the rich tables."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from rich.console import Console
from sklearn.datasets import make_classification

from functions.frames.manifest import Manifest
from training.fit.crossval import cross_validate
from training.fit.thresholds import precision_guard
from training.report.tables import print_cv_table
from training.report.worst_frames import select_worst_frames
from training.report.write import ReportPaths, write_report

LABELS = ["bus", "car", "empty"]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def cv():
    # Overlapping classes so that some out-of-fold answers are wrong.
    features, y = make_classification(
        n_samples=60,
        n_features=20,
        n_informative=5,
        n_classes=3,
        n_clusters_per_class=1,
        class_sep=0.8,
        random_state=0,
    )
    return cross_validate(
        features.astype(np.float32),
        y,
        np.arange(60) // 2,
        LABELS,
        folds=3,
        seed=0,
        params={"n_estimators": 30},
        progress=False,
    )


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(60, 224, 224, 3), dtype=np.uint8), [
        f"data/frame-{i:03d}.jpg" for i in range(60)
    ]


def _manifest(cv) -> Manifest:
    return Manifest(
        labels=LABELS,
        task="multiclass",
        thresholds=cv.thresholds.as_dict(),
        backbone="ResNet50",
        weights="none",
        precision="fp32",
        model_sha256="ab" * 32,
        model_version="20261122T080000Z-abababab",
        created_at="2026-11-22T08:00:00Z",
    )


def test_worst_frames_are_the_most_confident_mistakes(cv, frames):
    pixels, uris = frames
    worst = select_worst_frames(cv, uris, pixels, limit=5)
    wrong = np.flatnonzero(cv.oof_probabilities.argmax(axis=1) != cv.y)
    assert len(worst) == min(5, len(wrong)) > 0
    confidences = [frame.confidence for frame in worst]
    assert confidences == sorted(confidences, reverse=True)
    assert confidences[0] == pytest.approx(float(cv.oof_probabilities[wrong].max()))
    for frame in worst:
        i = uris.index(frame.uri)
        assert frame.true_label == LABELS[cv.y[i]] != frame.predicted_label
        assert frame.thumbnail_jpeg[:2] == b"\xff\xd8"  # a JPEG


def test_report_files_and_json_schema(cv, frames, tmp_path):
    pixels, uris = frames
    guard = precision_guard(cv.oof_probabilities, cv.oof_probabilities, cv.y)
    parity = {
        "fp32_vs_keras": {"n_images": 4, "features_max_abs_diff": 1e-5, "probabilities_max_abs_diff": 2e-7}
    }
    worst = select_worst_frames(cv, uris, pixels, limit=3)
    paths = write_report(
        tmp_path / "model",
        cv=cv,
        dataset_summary={
            "per_label": {"bus": 20, "car": 20, "empty": 20},
            "total": 60,
            "skipped": [{"uri": "data/bad.jpg", "reason": "truncated_or_corrupt"}],
        },
        neardup={"groups": 30, "merged": 30},
        thresholds=cv.thresholds,
        guard=guard,
        parity=parity,
        manifest=_manifest(cv),
        worst_frames=worst,
        other_cv={"int8": cv},
    )
    assert isinstance(paths, ReportPaths)
    for png in (paths.roc, paths.confusion, paths.calibration, paths.per_fold):
        assert png.read_bytes().startswith(PNG_SIGNATURE)

    report = json.loads(paths.json.read_text())
    assert {
        "cv",
        "other_cv",
        "dataset",
        "neardup",
        "thresholds",
        "guard",
        "parity",
        "manifest",
        "worst_frames",
    } <= set(report)
    assert report["labels"] == LABELS and report["task"] == "multiclass"
    assert len(report["cv"]["fold_metrics"]) == 3
    assert len(report["cv"]["oof_probabilities"]) == 60
    assert report["cv"]["mean"]["accuracy"] == pytest.approx(cv.mean["accuracy"])
    assert report["thresholds"]["target_precision"] == 0.95
    assert report["guard"]["passed"] is True
    assert report["manifest"]["model_sha256"] == "ab" * 32
    assert [frame["uri"] for frame in report["worst_frames"]] == [frame.uri for frame in worst]
    assert set(report["other_cv"]) == {"int8"}

    page = paths.html.read_text()
    assert page.startswith("<!doctype html>")
    # self-contained: the four plots, the compared run's ROC and confusion, and the thumbnails
    assert page.count("data:image/png;base64,") == 4 + 2
    for name in ("roc-int8.png", "confusion-int8.png"):
        png = paths.json.parent / name
        assert png.read_bytes().startswith(PNG_SIGNATURE)
        assert base64.b64encode(png.read_bytes()).decode() in page
    assert page.count("data:image/jpeg;base64,") == len(worst)
    assert base64.b64encode(paths.roc.read_bytes()).decode() in page
    assert "randomly initialised" in page  # weights none is said plainly
    assert "data/bad.jpg" in page and worst[0].uri in page
    assert not list(paths.json.parent.glob(".*"))  # atomic writes leave no temporary files


def test_report_without_model_guard_or_parity(cv, tmp_path):
    paths = write_report(
        tmp_path,
        cv=cv,
        dataset_summary={},
        neardup={},
        thresholds=cv.thresholds,
        guard=None,
        parity=None,
        manifest=None,
        worst_frames=[],
    )
    report = json.loads(paths.json.read_text())
    assert report["guard"] is None and report["manifest"] is None and report["worst_frames"] == []
    assert "No model was exported" in paths.html.read_text()


def test_cv_table_shows_folds_mean_and_labels(cv):
    console = Console(record=True, width=160)
    print_cv_table(cv, console)
    text = console.export_text()
    assert "mean ± std" in text
    assert f"{cv.mean['accuracy']:.3f}±{cv.std['accuracy']:.3f}" in text
    for label in LABELS:
        assert label in text
    assert "coverage" in text
