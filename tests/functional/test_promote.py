"""The deploy file and the promotion gates (pure parts of infra/ops/promote.py)."""

from __future__ import annotations

import dataclasses

import pytest

from functions import env
from infra.ops.compare import compare_items
from infra.ops.promote import DeployConfig, Gates, ModelPin, agreement_gate, cv_gate
from tests.unit.test_compare import item


@pytest.fixture
def tiny_manifest(tmp_path):
    from functions.frames.manifest import read_manifest
    from tests.fixtures.tiny_model import write_tiny_model

    return read_manifest(write_tiny_model(tmp_path / "m"))


LIVE = ModelPin("v1", "s3://b/models/v1/", "a" * 64)
CANDIDATE = ModelPin("v2", "s3://b/models/v2/", "b" * 64)


def test_deploy_file_round_trip_and_serverless_keys():
    config = DeployConfig(
        live=LIVE, candidate=CANDIDATE, shadow_sample_rate=0.2, candidate_since="2026-11-22T07:00:00.000Z"
    )
    data = config.to_file()
    assert data["modelUri"] == LIVE.uri and data["candidateModelSha256"] == CANDIDATE.sha256
    assert data["candidateVersion"] == "v2" and data["previous"] is None
    assert DeployConfig.from_file(data) == config
    no_candidate = DeployConfig(live=CANDIDATE, previous=LIVE)
    assert no_candidate.to_file()["candidateVersion"] == "none"  # serverless.yml's IAM default
    assert DeployConfig.from_file(no_candidate.to_file()) == no_candidate


def test_function_environment_names_the_pins():
    environment = DeployConfig(live=LIVE, candidate=CANDIDATE, shadow_sample_rate=0.5).function_environment()
    assert environment == {
        env.MODEL_URI: LIVE.uri,
        env.MODEL_SHA256: LIVE.sha256,
        env.CANDIDATE_MODEL_URI: CANDIDATE.uri,
        env.CANDIDATE_MODEL_SHA256: CANDIDATE.sha256,
        env.SHADOW_SAMPLE_RATE: "0.5",
    }


def test_agreement_gate_needs_both_frames_and_agreement():
    agreeing = compare_items([item("c", "bus", "bus")] * 9 + [item("c", "bus", "car")])
    assert agreement_gate(agreeing, Gates(min_frames=10)).passed  # 0.9 on 10
    assert not agreement_gate(agreeing, Gates(min_frames=11)).passed
    assert not agreement_gate(agreeing, Gates(min_frames=10, min_agreement=0.95)).passed
    assert "0.900 on 10 frames" in agreement_gate(agreeing, Gates()).detail


def test_cv_gate_compares_the_manifests_metric(tiny_manifest):
    better = dataclasses.replace(
        tiny_manifest, cv_summary={"mean": {"balanced_accuracy": 0.8, "log_loss": 0.4}}
    )
    worse = dataclasses.replace(
        tiny_manifest, cv_summary={"mean": {"balanced_accuracy": 0.7, "log_loss": 0.5}}
    )
    assert cv_gate(worse, better, Gates()).passed and not cv_gate(better, worse, Gates()).passed
    assert cv_gate(worse, better, Gates(cv_metric="log_loss")).passed  # lower is better
    assert not cv_gate(worse, tiny_manifest, Gates()).passed  # no CV figures: not evidence
