"""`camsort train --head auto` on a binary synthetic set: every head on the same folds, the
choice said on screen and in the manifest, the heads side by side in the report."""

from __future__ import annotations

import json
import shutil

import pytest

from functions.frames.manifest import load_verified
from tests.e2e.test_cli_train import _run_train

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_binary_auto_head(synthetic_dataset_factory, shared_keras_backbone, training_cache_dir, tmp_path):
    source = synthetic_dataset_factory(20, seed=0)
    data_dir = tmp_path / "two-labels"
    for label in ("car", "empty"):
        shutil.copytree(source / label, data_dir / label)
    out_dir = tmp_path / "model"
    result = _run_train(data_dir, out_dir, training_cache_dir, "--precision", "fp32", "--head", "auto")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "lowest out-of-fold log loss (" in text and "same folds" in text
    _, manifest = load_verified(out_dir)
    chosen = manifest.cv_summary["head"]
    assert chosen in ("lightgbm", "logistic", "svm")
    assert f"head: {chosen}: --head auto" in text
    report = json.loads((out_dir / "report.json").read_text())
    losses = {name: figures["mean"]["log_loss"] for name, figures in report["heads"].items()}
    assert set(losses) == {"lightgbm", "logistic", "svm"} and chosen == min(losses, key=losses.get)
    assert "Classifier heads (same folds)" in (out_dir / "report.html").read_text()
    assert (out_dir / "heads.png").is_file()
    # the shipped head, whatever it is, passed the parity gate against Keras + that head
    assert manifest.parity["fp32_vs_keras"]["labels_disagree"] == 0
    assert manifest.parity["fp32_vs_keras"]["probabilities_max_abs_diff"] <= 1e-4
