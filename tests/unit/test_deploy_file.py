"""deploy/<stage>.json with named models: the pins per model, the JSON the function reads."""

from __future__ import annotations

import json

import pytest

from functions.errors import ConfigurationError
from infra.deploy.deploy_file import (
    NAMED_MODELS_VARIABLE,
    DeployConfig,
    ModelPin,
    ModelSlot,
    check_model_name,
    model_prefix,
)

LIVE = ModelPin("v1", "s3://b/models/v1/", "a" * 64)
BAY = ModelPin("v3", "s3://b/models/bay/v3/", "b" * 64)
BAY_NEXT = ModelPin("v4", "s3://b/models/bay/v4/", "c" * 64)
GATE = ModelPin("v1", "s3://b/models/gate/v1/", "d" * 64)


def test_named_models_round_trip_beside_the_flat_default_keys():
    config = DeployConfig(
        live=LIVE,
        models={"bay": ModelSlot(BAY, candidate=BAY_NEXT, candidate_since="2026-12-06T10:00:00Z"), "gate": ModelSlot(GATE, previous=GATE)},
    )  # fmt: skip
    data = config.to_file()
    assert (data["modelVersion"], data["modelSha256"]) == ("v1", "a" * 64)  # as serverless.yml reads them
    assert data["models"]["bay"] == {
        "modelVersion": "v3", "modelUri": BAY.uri, "modelSha256": "b" * 64, "candidateVersion": "v4",
        "candidateModelUri": BAY_NEXT.uri, "candidateSha256": "c" * 64, "candidateSince": "2026-12-06T10:00:00Z",
    }  # fmt: skip
    assert DeployConfig.from_file(json.loads(json.dumps(data))) == config
    assert json.loads(data["namedModels"]) == {
        "bay": {
            "uri": BAY.uri,
            "sha256": "b" * 64,
            "candidate_uri": BAY_NEXT.uri,
            "candidate_sha256": "c" * 64,
        },
        "gate": {"uri": GATE.uri, "sha256": "d" * 64},
    }
    assert config.function_environment()[NAMED_MODELS_VARIABLE] == data["namedModels"]


def test_a_stage_without_named_models_keeps_its_environment():
    config = DeployConfig(live=LIVE)
    assert config.to_file()["namedModels"] == "" and "models" not in config.to_file()
    assert NAMED_MODELS_VARIABLE not in config.function_environment()
    assert config.slot("bay") is None
    assert config.slot("default") == ModelSlot(LIVE)


def test_with_slot_changes_one_model_only():
    config = DeployConfig(live=LIVE, models={"gate": ModelSlot(GATE)})
    bay = config.with_slot("bay", ModelSlot(BAY))
    assert bay.models == {"gate": ModelSlot(GATE), "bay": ModelSlot(BAY)} and bay.live == LIVE
    default = bay.with_slot("default", ModelSlot(BAY_NEXT, previous=LIVE))
    assert (default.live, default.previous, default.models) == (BAY_NEXT, LIVE, bay.models)


def test_every_named_model_is_pinned():
    data = DeployConfig(live=LIVE, models={"bay": ModelSlot(BAY)}).to_file()
    data["models"]["bay"]["modelSha256"] = ""
    with pytest.raises(ConfigurationError, match="every model the stage runs is pinned"):
        DeployConfig.from_file(data)


def test_model_names_and_prefixes():
    assert model_prefix("models/", "default", "v2") == "models/v2/"
    assert model_prefix("models/", "bay", "v2") == "models/bay/v2/"
    assert check_model_name("gate-2") == "gate-2"
    for bad in ("", "Bay", "bay/v1", "-bay", "b" * 33):
        with pytest.raises(ConfigurationError, match="model name"):
            check_model_name(bad)
