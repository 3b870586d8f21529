"""The demo's regions camera up to the function: named models trained on the default model's own
backbone (here the tiny contract model's), cached, uploaded with their pins, the camera's regions
in the model bucket, and the camera's frames in time order."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import numpy as np
import onnxruntime as ort
from rich.console import Console

from functions.frames.image_loader import load_regions
from functions.frames.manifest import read_manifest
from functions.frames.regions import parse_camera_config
from infra.demo.region_models import (
    REGIONS_CAMERA,
    RegionsSettings,
    ensure_region_models,
    start_region_models,
    wait_for_region_models,
)
from infra.demo.regions import deploy_regions, upload_sequence
from infra.deploy.deploy_file import NAMED_MODELS_VARIABLE, DeployConfig, ModelPin

SETTINGS = RegionsSettings(train_frames=12, live_frames=8, seed=1)


def _features(model_path, crops):
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    return session.run(["features"], {"image": crops})[0]


def test_region_models_share_the_default_backbone_and_deploy_pinned(
    local_stack, stack_model_uri, tiny_model_dir, tmp_path
):
    output = io.StringIO()
    console = Console(file=output, width=160)
    models = ensure_region_models(SETTINGS, tiny_model_dir, tmp_path / "cache", console)
    assert sorted(models) == ["bay", "gate"]
    default = read_manifest(tiny_model_dir)
    for name, path in models.items():
        manifest = read_manifest(path)
        assert manifest.training_set["model_name"] == name
        assert manifest.training_set["frames"] == SETTINGS.train_frames
        assert (manifest.backbone, manifest.precision, manifest.weights) == (
            default.backbone,
            default.precision,
            default.weights,
        )
        assert str(tiny_model_dir) in manifest.quantization["backbone_from"]
        assert manifest.parity["trees"]["labels_disagree"] == 0
    assert read_manifest(models["bay"]).labels == ["empty", "occupied"]
    assert read_manifest(models["gate"]).labels == ["closed", "open"]

    sequence = upload_sequence(
        local_stack, SETTINGS, tmp_path / "sequence", datetime(2026, 12, 6, 10, tzinfo=UTC)
    )
    assert len(sequence.keys) == SETTINGS.live_frames and sequence.keys == sorted(sequence.keys)
    assert all(key.startswith(f"{local_stack.names.frames_prefix}{REGIONS_CAMERA}/") for key in sequence.keys)
    # the same backbone, bytes and all: a crop's features are the default model's
    config = parse_camera_config(sequence.regions, camera_id=REGIONS_CAMERA, source="t")
    crops = np.stack(
        load_regions(
            (tmp_path / "sequence" / sequence.frames[0].key).read_bytes(),
            [r.box for r in config.regions],
            source="f",
        )
    )
    assert np.array_equal(
        _features(models["bay"] / "model.onnx", crops), _features(tiny_model_dir / "model.onnx", crops)
    )

    again = ensure_region_models(SETTINGS, tiny_model_dir, tmp_path / "cache", console)
    assert again == models and "Using the cached region models" in output.getvalue()

    live = DeployConfig(live=ModelPin(default.model_version, stack_model_uri, default.model_sha256))
    deployment = deploy_regions(local_stack, live, models, sequence.regions)
    s3, bucket = local_stack.client("s3"), local_stack.names.bucket
    assert (
        json.loads(s3.get_object(Bucket=bucket, Key=f"cameras/{REGIONS_CAMERA}.json")["Body"].read())
        == sequence.regions
    )
    pins = json.loads(deployment.function_environment()[NAMED_MODELS_VARIABLE])
    for name, path in models.items():
        manifest = read_manifest(path)
        assert pins[name] == {
            "uri": f"s3://{bucket}/models/{name}/{manifest.model_sha256[:12]}/",
            "sha256": manifest.model_sha256,
        }
        s3.head_object(Bucket=bucket, Key=f"models/{name}/{manifest.model_sha256[:12]}/model.onnx")
    assert deployment.config.live == live.live  # the default model stays as it was


def test_the_region_models_train_in_a_child_while_the_demo_goes_on(tiny_model_dir, tmp_path):
    """What the demo starts before its cameras: a child trains bay and gate into the cache; joined,
    the cache serves them; once cached, nothing is started; a failed child is said in one line."""
    output = io.StringIO()
    console = Console(file=output, width=200)
    cache, log = tmp_path / "cache", tmp_path / "region-models.log"
    training = start_region_models(SETTINGS, tiny_model_dir, cache, log)
    assert training is not None and training.log_path == log

    wait_for_region_models(training, console)

    assert training.process.returncode == 0 and "trained while the cameras ran" in output.getvalue()
    assert "Training the region models bay, gate" in log.read_text()
    models = ensure_region_models(SETTINGS, tiny_model_dir, cache, console)
    assert "Using the cached region models" in output.getvalue()
    assert all((path / "model.onnx").is_file() for path in models.values())
    assert start_region_models(SETTINGS, tiny_model_dir, cache, log) is None

    broken = tmp_path / "broken-default"
    broken.mkdir()
    (broken / "manifest.json").write_text((tiny_model_dir / "manifest.json").read_text())  # no model.onnx
    failed = start_region_models(
        RegionsSettings(train_frames=12, seed=2), broken, cache, tmp_path / "failed.log"
    )
    assert failed is not None
    wait_for_region_models(failed, console)
    assert failed.process.returncode != 0
    assert (
        f"in the background failed (exit {failed.process.returncode}, log {tmp_path / 'failed.log'})"
        in output.getvalue()
    )
