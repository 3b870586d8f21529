"""`camsort train` end to end: synthetic frames -> model directory, through the real CLI.

Real parts throughout: the seeded random-init Keras ResNet50 (no ImageNet download here),
tf2onnx, onnxruntime quantization, LightGBM, onnxmltools, onnxruntime. The session's
ResNet50 and its converted backbone are shared (``shared_keras_backbone``,
``training_cache_dir``), and the int8 backbone and the features are cached there too.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from camsort.cli import main
from functions.frames.decision import decide
from functions.frames.image_loader import load_image
from functions.frames.manifest import load_verified, read_manifest


def _run_train(data_dir, out_dir, cache_dir, *extra):
    args = [
        "train",
        str(data_dir),
        "--out",
        str(out_dir),
        "--weights",
        "none",
        "--folds",
        "3",
        "--cache-dir",
        str(cache_dir),
    ]
    return CliRunner().invoke(main, [*args, *extra], catch_exceptions=False, terminal_width=200)


def _predict(model_path, images):
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    return session.run(["probabilities", "features"], {"image": images})


@pytest.mark.slow
def test_train_three_labels_writes_a_working_model(
    synthetic_dataset_factory, shared_keras_backbone, training_cache_dir, tmp_path
):
    data_dir = synthetic_dataset_factory(20, seed=0)
    out_dir = tmp_path / "model"
    result = _run_train(data_dir, out_dir, training_cache_dir)
    assert result.exit_code == 0, result.output

    # said plainly on screen, and the CV table printed
    assert "randomly initialised" in result.output
    assert "mean ± std" in result.output
    for label in ("bus", "car", "empty"):
        assert label in result.output

    model_path, manifest = load_verified(out_dir)  # sha256 in the manifest matches model.onnx
    assert manifest == read_manifest(out_dir)
    assert manifest.labels == ["bus", "car", "empty"] and manifest.task == "multiclass"
    assert manifest.weights == "none" and manifest.backbone == "ResNet50"
    assert manifest.quantization["requested"] == "auto"
    # auto: int8 ships exactly when the guard passed
    assert manifest.precision == ("int8" if manifest.quantization["guard"]["passed"] else "fp32")
    assert manifest.training_set["per_label"] == {"bus": 20, "car": 20, "empty": 20}
    assert manifest.cv_summary["folds"] == 3
    assert manifest.parity["fp32_vs_keras"]["labels_disagree"] == 0
    assert manifest.parity["fp32_vs_keras"]["features_allclose"] is True
    for tool in (
        "python",
        "tensorflow",
        "keras",
        "tf2onnx",
        "onnx",
        "onnxmltools",
        "lightgbm",
        "onnxruntime",
        "numpy",
    ):
        assert manifest.tools[tool]
    assert manifest.model_version.endswith(manifest.model_sha256[:8])
    for name in ("report.html", "report.json", "roc.png", "confusion.png"):
        assert (out_dir / name).is_file(), name
    assert not list(out_dir.glob("model-fp32*"))  # the parity-only graph stays out of the model dir
    report = json.loads((out_dir / "report.json").read_text())
    assert report["manifest"]["model_sha256"] == manifest.model_sha256

    # The model runs in onnxruntime on frames loaded by the function's loader; its columns
    # are the manifest's labels: training frames come out as their own folder's label.
    frames = {label: sorted((data_dir / label).glob("*.jpg"))[0] for label in manifest.labels}
    images = np.stack([load_image(path.read_bytes(), source=str(path)) for path in frames.values()])
    probabilities, features = _predict(model_path, images)
    assert probabilities.shape == (3, 3) and probabilities.dtype == np.float32
    assert features.shape == (3, 2048)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    decisions = decide(probabilities, manifest.labels, manifest.thresholds)
    assert [d.top_label for d in decisions] == list(frames)

    # The familiarity description: fitted on the shipped features, threshold calibrated out of
    # fold at 1 %, measured on the four unfamiliar kinds (16 frames each), shown in the report.
    familiarity = manifest.familiarity
    assert familiarity["false_alarm_rate"] == 0.01 and familiarity["components"] == 3
    assert familiarity["dims"] == 4  # 40 frames per out-of-fold fit / 10
    assert familiarity["calibration"]["frames"] == 60
    assert familiarity["prior"] == {"bus": 1 / 3, "car": 1 / 3, "empty": 1 / 3}
    kinds = familiarity["evaluation"]["kinds"]
    assert set(kinds) == {"photos", "noise", "uniform", "scenes", "all"}
    assert all(kinds[k]["frames"] == 16 for k in ("photos", "noise", "uniform", "scenes"))
    assert kinds["all"]["auc"] > 0.9  # seeded: the same frames and backbone every run
    assert (out_dir / "familiarity_roc.png").is_file()
    assert "Familiarity (unfamiliar frames)" in (out_dir / "report.html").read_text()
    assert report["familiarity"]["threshold"] == familiarity["threshold"]
    # The ONNX features of a black and a white frame are far beyond the threshold.
    from functions.familiarity import Familiarity

    described = Familiarity.from_manifest(familiarity)
    flat = np.stack([np.zeros((224, 224, 3), np.uint8), np.full((224, 224, 3), 255, np.uint8)])
    assert np.all(described.distances(_predict(model_path, flat)[1]) > described.threshold)


@pytest.mark.slow
def test_train_binary_fp32(synthetic_dataset_factory, shared_keras_backbone, training_cache_dir, tmp_path):
    import shutil

    data_dir = tmp_path / "two-labels"
    source = synthetic_dataset_factory(20, seed=0)
    for label in ("car", "empty"):
        shutil.copytree(source / label, data_dir / label)
    out_dir = tmp_path / "model"
    result = _run_train(data_dir, out_dir, training_cache_dir, "--precision", "fp32")
    assert result.exit_code == 0, result.output

    model_path, manifest = load_verified(out_dir)
    assert manifest.labels == ["car", "empty"] and manifest.task == "binary"
    assert manifest.precision == "fp32"
    assert "guard" not in manifest.quantization  # int8 never considered
    assert set(manifest.parity) == {"fp32_vs_keras"}
    frame = sorted((data_dir / "empty").glob("*.jpg"))[0]
    probabilities, _ = _predict(model_path, load_image(frame.read_bytes(), source=str(frame))[None])
    assert probabilities.shape == (1, 2)
    assert manifest.labels[int(probabilities.argmax())] == "empty"


@pytest.mark.slow
def test_trained_model_fixture_is_a_verified_model(trained_model_dir):
    model_path, manifest = load_verified(trained_model_dir)
    assert manifest.labels == ["bus", "car", "empty"]
    assert manifest.precision == "int8" and manifest.quantization["requested"] == "int8"
    assert "passed" in manifest.quantization["guard"]  # recorded even when int8 is forced
    # int8: the trees on the model's own features are exact; the fp32 graph still matches Keras
    assert manifest.parity["int8_trees"]["labels_disagree"] == 0
    assert manifest.parity["fp32_vs_keras"]["features_allclose"] is True
    assert (trained_model_dir / "report.html").is_file()
    assert model_path.stat().st_size > 1_000_000  # the real ResNet50 is inside
