"""Multi-label end to end: `camsort train --task multilabel` on a synthetic {bus, car, night}
tree (real random-init ResNet50, LightGBM per label, one ONNX model), then that model served
by the function on the local stack (moto over HTTP, S3 -> SQS -> worker -> handler)."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner

from camsort.cli import main
from functions.frames.decision import decide_labels
from functions.frames.image_loader import load_image
from functions.frames.manifest import load_verified
from infra.demo.accounting import scan_results
from infra.local.stack import upload_model
from tests.fixtures.local_stack import LENIENT_TIMEOUT_S
from training.data.synthetic import folder_name, label_sets, multilabel_frame_jpeg

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PER_SET = 6


@pytest.fixture(scope="module")
def multilabel_train(tmp_path_factory, shared_keras_backbone, training_cache_dir):
    from training.data.synthetic import write_multilabel_dataset

    root = tmp_path_factory.mktemp("ml-e2e")
    write_multilabel_dataset(root / "data", PER_SET, seed=11, width=640, height=360)
    out_dir = root / "model"
    args = ["train", str(root / "data"), "--task", "multilabel", "--out", str(out_dir), "--weights", "none"]
    args += ["--folds", "3", "--precision", "fp32", "--cache-dir", str(training_cache_dir)]
    result = CliRunner().invoke(main, args, catch_exceptions=False, terminal_width=200)
    return result, out_dir


def test_train_prints_the_multilabel_tables_and_writes_a_verified_model(multilabel_train):
    result, out_dir = multilabel_train
    assert result.exit_code == 0, result.output
    for heading in ("micro", "macro", "subset", "Hamming", "ROC-AUC", "mean±sd", "threshold"):
        assert heading in result.output
    assert "stratified on the label combination" in " ".join(result.output.split())  # rich wraps at 80
    _, manifest = load_verified(out_dir)
    assert manifest.task == "multilabel" and manifest.labels == ["bus", "car", "night"]
    assert set(manifest.thresholds) == {"bus", "car", "night"}
    assert manifest.training_set["per_label"] == {
        "bus": 4 * PER_SET,
        "car": 4 * PER_SET,
        "night": 4 * PER_SET,
    }
    assert manifest.training_set["empty_set"] == PER_SET
    assert manifest.parity["fp32_vs_keras"]["labels_disagree"] == 0
    assert manifest.parity["fp32_vs_keras"]["probabilities_max_abs_diff"] <= 1e-4
    report = json.loads((out_dir / "report.json").read_text())
    assert report["task"] == "multilabel" and len(report["cross_validation"]["fold_metrics"]) == 3
    for name in ("report.html", "roc.png", "per_fold.png"):
        assert (out_dir / name).is_file()
    # night is a matter of light, not of shape: even a random-init backbone separates it
    assert manifest.cv_summary["per_label"]["night"]["roc_auc"]["mean"] > 0.9
    # familiarity: one component per label set (8 sets of {bus, car, night}), the prior per label
    assert manifest.familiarity["components"] == len(label_sets()) == 8
    assert manifest.familiarity["prior"] == {"bus": 1 / 3, "car": 1 / 3, "night": 1 / 3}
    assert (out_dir / "familiarity_roc.png").is_file()
    assert report["familiarity"]["threshold"] == manifest.familiarity["threshold"]
    assert set(manifest.familiarity["evaluation"]["kinds"]) == {"photos", "noise", "uniform", "scenes", "all"}


@pytest.fixture
def stack_model_uri(local_stack, multilabel_train) -> str:
    _, out_dir = multilabel_train
    return upload_model(local_stack, out_dir, version="multilabel")


@pytest.mark.parametrize("function_timeout_s", [LENIENT_TIMEOUT_S])
def test_the_function_serves_the_multilabel_model(local_stack, run_worker, multilabel_train):
    _, out_dir = multilabel_train
    model_path, manifest = load_verified(out_dir)
    s3 = local_stack.client("s3")
    uploaded = {}
    for i, labels in enumerate(label_sets()):  # frames the model never saw: another seed
        body = multilabel_frame_jpeg(labels, 900 + i, 640, 360)
        key = f"{local_stack.names.frames_prefix}cam-0{i % 2 + 1}/{folder_name(labels)}-{i}.jpg"
        s3.put_object(Bucket=local_stack.names.bucket, Key=key, Body=body)
        uploaded[key] = body

    stats = run_worker(write_tags=True)  # the labels tag is checked below
    assert (stats.reported_failures, stats.failed_batches, stats.timeouts) == (0, 0, 0), stats.errors

    items = {item["key"]: item for item in scan_results(local_stack)}
    assert set(items) == set(uploaded)
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    for key, body in uploaded.items():
        item = items[key]
        assert item["status"] == "ok", item
        assert isinstance(item["labels"], list) and "label" not in item
        assert set(item["probabilities"]) == {"bus", "car", "night"}
        # the same answer as the model run here on the same bytes, through the same loader and rule
        pixels = load_image(body, source=key)[None]
        probabilities = session.run(["probabilities"], {"image": pixels})[0]
        expected = decide_labels(probabilities, manifest.labels, manifest.thresholds)[0]
        assert item["labels"] == expected.labels
        assert np.allclose(
            [float(item["probabilities"][k]) for k in manifest.labels], probabilities[0], atol=1e-6
        )
        tags = {
            t["Key"]: t["Value"]
            for t in s3.get_object_tagging(Bucket=local_stack.names.bucket, Key=key)["TagSet"]
        }
        assert tags["camsort-labels"] == "+".join(expected.labels)
        assert tags["camsort-model-version"] == manifest.model_version
    # the night attribute comes through the whole chain
    night = [items[k]["labels"] for k in uploaded if "night" in k.rsplit("/", 1)[1]]
    day = [items[k]["labels"] for k in uploaded if "night" not in k.rsplit("/", 1)[1]]
    assert sum("night" in labels for labels in night) >= 3 and sum("night" in labels for labels in day) <= 1
