"""The model artifact contract: manifest round trip, sha256 verification, malformed refusals."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from functions.errors import ModelArtifactError, ModelIntegrityError
from functions.frames.manifest import (
    MANIFEST_FILENAME,
    MODEL_FILENAME,
    InputSpec,
    Manifest,
    load_verified,
    read_manifest,
    sha256_file,
    write_manifest,
)

MODEL_BYTES = b"not really onnx, but hashed all the same"


def make_manifest(model_sha256: str) -> Manifest:
    return Manifest(
        labels=["bus", "car", "empty"],
        task="multiclass",
        thresholds={"bus": 0.5, "car": 0.4, "empty": 0.6},
        backbone="resnet50",
        weights="none",
        precision="int8",
        model_sha256=model_sha256,
        model_version="2026-11-22.1",
        created_at="2026-11-22T07:00:00+00:00",
        cv_summary={"accuracy": {"mean": 0.93, "std": 0.02}},
        training_set={"bus": 10, "car": 12, "empty": 9},
        tools={"onnxruntime": "1.31.1"},
    )


@pytest.fixture
def model_dir(tmp_path):
    (tmp_path / MODEL_FILENAME).write_bytes(MODEL_BYTES)
    write_manifest(tmp_path, make_manifest(sha256_file(tmp_path / MODEL_FILENAME)))
    return tmp_path


def test_round_trip(model_dir):
    manifest = read_manifest(model_dir)
    assert manifest == make_manifest(sha256_file(model_dir / MODEL_FILENAME))
    assert manifest.input == InputSpec()
    assert Manifest.from_dict(json.loads(json.dumps(manifest.to_dict()))) == manifest


def test_load_verified_accepts_the_matching_model(model_dir):
    path, manifest = load_verified(model_dir)
    assert path == model_dir / MODEL_FILENAME
    assert manifest.model_sha256 == sha256_file(path)


def test_sha256_mismatch_is_refused(model_dir):
    (model_dir / MODEL_FILENAME).write_bytes(MODEL_BYTES + b"!")
    with pytest.raises(ModelIntegrityError, match="does not match"):
        load_verified(model_dir)


def test_missing_model_file(model_dir):
    (model_dir / MODEL_FILENAME).unlink()
    with pytest.raises(ModelArtifactError, match=MODEL_FILENAME):
        load_verified(model_dir)


def test_missing_manifest(tmp_path):
    with pytest.raises(ModelArtifactError, match="no manifest"):
        read_manifest(tmp_path)


def test_not_json(model_dir):
    (model_dir / MANIFEST_FILENAME).write_text("{ nope")
    with pytest.raises(ModelArtifactError, match="not valid JSON"):
        read_manifest(model_dir)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("labels"),
        lambda d: d.update(format_version=99),
        lambda d: d.update(task="regression"),
        lambda d: d.update(precision="fp16"),
        lambda d: d.update(labels=["bus"], thresholds={"bus": 0.5}),
        lambda d: d.update(labels=["bus", "unknown", "car"]),
        lambda d: d.update(thresholds={"bus": 0.5}),
        lambda d: d.update(thresholds={"bus": 1.5, "car": 0.4, "empty": 0.6}),
        lambda d: d.update(model_sha256="abc"),
        lambda d: d.update(input={"name": "image", "surprise": 1}),
        lambda d: d.update(unexpected_field=1),
    ],
)
def test_malformed_manifests_are_refused(model_dir, mutate):
    path = model_dir / MANIFEST_FILENAME
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ModelArtifactError, match=MANIFEST_FILENAME):
        read_manifest(model_dir)


def test_write_manifest_validates_first(tmp_path):
    with pytest.raises(ModelArtifactError, match="binary"):
        write_manifest(tmp_path, replace(make_manifest("0" * 64), task="binary"))
    assert not (tmp_path / MANIFEST_FILENAME).exists()
