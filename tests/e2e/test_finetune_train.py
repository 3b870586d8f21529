"""`camsort train --fine-tune` end to end: cross-fitted evaluation, frozen and fine-tuned side by side,
the fine-tuned weights folded into the frozen backbone's graph and the parity gate, the record in the manifest.

Small on purpose (12 frames per label, 2 views, 2 epochs): it pins the machinery and the
honesty of the figures, not how much fine-tuning buys (docs/training.md: Fine-tuning, with the figures).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from functions.frames.manifest import load_verified
from tests.e2e.test_cli_train import _predict, _run_train

pytestmark = pytest.mark.slow
FINE_TUNE = ("--fine-tune", "--fine-tune-epochs", "2", "--fine-tune-views", "2", "--precision", "fp32")


@pytest.fixture(scope="module")
def fine_tuned(synthetic_dataset_factory, shared_keras_backbone, training_cache_dir, tmp_path_factory):
    data_dir = synthetic_dataset_factory(12, seed=5)
    out_dir = tmp_path_factory.mktemp("fine-tuned") / "model"
    result = _run_train(data_dir, out_dir, training_cache_dir, *FINE_TUNE)
    assert result.exit_code == 0, result.output
    return data_dir, out_dir, result.output


def test_prints_frozen_and_fine_tuned_side_by_side(fine_tuned):
    from training.report.formatting import mean_std

    _, out_dir, output = fine_tuned
    report = json.loads((out_dir / "report.json").read_text())
    assert "frozen vs fine-tuned (conv5), the same 36 frames and 3 folds" in output
    tuned, frozen = report["cv"], report["other_cv"]["frozen"]
    row = next(line for line in output.splitlines() if "balanced acc." in line and "±" in line)
    cells = [cell.strip() for cell in row.strip("│┃ ").split("│")]
    assert cells == [
        "balanced acc.",
        mean_std(frozen["mean"]["balanced_accuracy"], frozen["std"]["balanced_accuracy"]),
        mean_std(tuned["mean"]["balanced_accuracy"], tuned["std"]["balanced_accuracy"]),
    ]


def test_figures_are_cross_fitted_on_the_frozen_runs_folds(fine_tuned):
    _, out_dir, _ = fine_tuned
    report = json.loads((out_dir / "report.json").read_text())
    tuned, frozen = report["cv"], report["other_cv"]["frozen"]
    assert tuned["fold_of"] == frozen["fold_of"] and sorted(set(tuned["fold_of"])) == [0, 1, 2]
    assert tuned["y"] == frozen["y"] and len(tuned["y"]) == 36
    # Every frame has an out-of-fold answer (from a network tuned without it): no row is left
    # at the zeros it started from, and the answers are not the frozen run's.
    oof = np.array(tuned["oof_probabilities"])
    np.testing.assert_allclose(oof.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(oof, np.array(frozen["oof_probabilities"]))


def test_manifest_records_the_fine_tuning_and_the_gate_passed(fine_tuned):
    _, out_dir, _ = fine_tuned
    _, manifest = load_verified(out_dir)
    tuning = manifest.fine_tuning
    assert tuning["shipped"] is True and tuning["decision"].startswith("shipped (asked for)")
    assert tuning["from_stage"] == "conv5" and tuning["layers"][0].startswith("conv5_block1")
    assert tuning["views_per_frame"] == 2 and tuning["max_epochs"] == 2
    assert len(tuning["best_epoch_per_fold"]) == 3 and 1 <= tuning["epochs_final"] <= 2
    assert tuning["evaluation"].startswith("cross-fitting")
    assert set(tuning["augmentation"]) >= {
        "flip_probability",
        "brightness",
        "contrast",
        "colour",
        "min_scale",
    }
    assert tuning["frames_per_second"] > 0 and tuning["seconds"]["cross_fit"] > 0
    assert manifest.cv_summary["mean"]["balanced_accuracy"] is not None
    # The fine-tuned weights were folded into the frozen graph (no second tf2onnx conversion), and the
    # result passed the parity gate against the fine-tuned Keras model.
    assert manifest.parity["fp32_vs_keras"]["labels_disagree"] == 0
    assert manifest.parity["fp32_vs_keras"]["features_allclose"] is True


def test_the_shipped_backbone_is_the_fine_tuned_one(fine_tuned, backbone_onnx_path):
    """Its features differ from the frozen backbone's: the weights shipped are the tuned ones."""
    import onnxruntime as ort

    from functions.frames.image_loader import load_image

    data_dir, out_dir, output = fine_tuned
    assert "its weights folded into the frozen graph" in " ".join(output.split())
    model_path, manifest = load_verified(out_dir)
    frame = sorted((data_dir / "bus").glob("*.jpg"))[0]
    image = load_image(frame.read_bytes(), source=str(frame))[None]
    _, shipped = _predict(model_path, image)
    frozen = ort.InferenceSession(str(backbone_onnx_path), providers=["CPUExecutionProvider"]).run(
        ["features"], {"image": image}
    )[0]
    assert shipped.shape == frozen.shape == (1, 2048)
    assert not np.allclose(shipped, frozen, rtol=1e-2, atol=1e-3)


def test_report_shows_both_with_their_plots(fine_tuned):
    _, out_dir, _ = fine_tuned
    page = (out_dir / "report.html").read_text()
    assert "For comparison: frozen features, the same frames and folds" in page
    assert "<h2>Fine-tuning</h2>" in page and "cross-fitting" in page
    for name in ("roc.png", "confusion.png", "roc-frozen.png", "confusion-frozen.png"):
        assert (out_dir / name).is_file(), name


def test_fine_tune_is_refused_with_feature_shards(tmp_path):
    from click.testing import CliRunner

    from camsort.cli import main

    shards = "s3://b/features/" + "0" * 64 + "/"
    result = CliRunner().invoke(
        main, ["train", "s3://b/t/", "--out", str(tmp_path / "m"), "--fine-tune", "--features", shards]
    )
    assert (
        result.exit_code == 2 and "--fine-tune trains the network on the frames themselves" in result.output
    )


def test_multilabel_fine_tuning_uses_a_sigmoid_head_and_the_frozen_folds(
    tmp_path_factory, shared_keras_backbone, training_cache_dir
):
    """`--task multilabel --fine-tune`: cross-fitted on the frozen run's folds, label sets side by side."""
    from click.testing import CliRunner

    from camsort.cli import main
    from training.data.synthetic import write_multilabel_dataset

    root = tmp_path_factory.mktemp("ml-fine-tune")
    write_multilabel_dataset(root / "data", 5, seed=12, width=640, height=360)
    out_dir = root / "model"
    args = ["train", str(root / "data"), "--task", "multilabel", "--out", str(out_dir), "--weights", "none"]
    args += ["--folds", "3", "--cache-dir", str(training_cache_dir), *FINE_TUNE]
    result = CliRunner().invoke(main, args, catch_exceptions=False, terminal_width=200)
    assert result.exit_code == 0, result.output

    assert "frozen vs fine-tuned (conv5)" in result.output and "fine-tuned (cross-fitted)" in result.output
    _, manifest = load_verified(out_dir)
    assert manifest.task == "multilabel"
    assert manifest.fine_tuning["head"] == "sigmoid per label" and manifest.fine_tuning["shipped"] is True
    assert "macro f1" in manifest.fine_tuning["decision"]
    assert manifest.parity["fp32_vs_keras"]["labels_disagree"] == 0
    report = json.loads((out_dir / "report.json").read_text())
    tuned, frozen = report["cross_validation"], report["frozen"]
    assert tuned["fold_of"] == frozen["fold_of"]
    assert not np.allclose(np.array(tuned["oof_probabilities"]), np.array(frozen["oof_probabilities"]))
    page = (out_dir / "report.html").read_text()
    assert (
        "Frozen vs fine-tuned, the same frames and folds" in page and (out_dir / "roc-frozen.png").is_file()
    )
