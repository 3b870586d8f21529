"""``deploy/<stage>.json``: what a stage's function runs, every model pinned by sha256.

The whole-frame ``default`` model keeps its flat keys (``modelVersion``, ``modelUri``,
``modelSha256``, the candidate's, the rollback target), which serverless.yml has always read.
Named models (a region's ``bay``, ``gate``: ``functions.frames.regions``) sit under ``models``,
each with the same pins::

    "models": {"bay": {"modelVersion": "v3", "modelUri": "s3://<bucket>/models/bay/v3/",
                       "modelSha256": "<64 hex>", "candidateVersion": "v4",
                       "candidateModelUri": "...", "candidateSha256": "...",
                       "candidateSince": "...", "previous": {...}}}

and, derived from them, ``namedModels``: the JSON text of CAMSORT_NAMED_MODELS
(``{"bay": {"uri": ..., "sha256": ..., "candidate_uri"?: ..., "candidate_sha256"?: ...}}``),
which serverless.yml passes to the function as it is (it cannot build JSON itself). A named
model lives under ``models/<name>/<version>/`` in the model bucket; ``default`` under
``models/<version>/`` as before.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from functions import env
from functions.errors import ConfigurationError
from functions.frames.regions import DEFAULT_MODEL

__all__ = ["DEFAULT_MODEL", "DeployConfig", "ModelPin", "ModelSlot", "check_model_name", "model_prefix"]
NAMED_MODELS_VARIABLE = env.NAMED_MODELS  # read by the function's settings (functions/named_models.py)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


def check_model_name(name: str) -> str:
    """A model name as regions use it ([a-z0-9][a-z0-9_-]{0,31}), or a ConfigurationError."""
    if not _MODEL_NAME.fullmatch(name or ""):
        raise ConfigurationError(
            f"model name {name!r}: use lower-case letters, digits, '-' and '_' (at most 32, starting "
            "with a letter or digit), as the cameras' regions name it"
        )
    return name


def model_prefix(models_root: str, name: str, version: str) -> str:
    """``models/<version>/`` for default, ``models/<name>/<version>/`` for a named model."""
    check_model_name(name)
    return f"{models_root}{version}/" if name == DEFAULT_MODEL else f"{models_root}{name}/{version}/"


@dataclass(frozen=True)
class ModelPin:
    version: str
    uri: str
    sha256: str

    def __post_init__(self) -> None:
        # An empty or malformed pin would deploy a function that runs whatever model.onnx it
        # finds (or, since it refuses to start unpinned, none): refuse it where it is written.
        if not _SHA256.fullmatch(self.sha256 or ""):
            raise ConfigurationError(
                f"model {self.version} ({self.uri}): pin {self.sha256!r} is not a sha256 (64 lower-case hex "
                "digits); every model the stage runs is pinned: take it from the manifest's model_sha256"
            )


@dataclass(frozen=True)
class ModelSlot:
    """One model name's pins: what runs, the shadow candidate, and the rollback target."""

    live: ModelPin
    candidate: ModelPin | None = None
    candidate_since: str | None = None  # when the candidate started scoring (compare's window)
    previous: ModelPin | None = None


@dataclass(frozen=True)
class DeployConfig:
    """What deploy/<stage>.json holds: the default model's pins (flat) and the named models'."""

    live: ModelPin
    candidate: ModelPin | None = None
    shadow_sample_rate: float = env.DEFAULT_SHADOW_SAMPLE_RATE
    candidate_since: str | None = None  # when the candidate started scoring (compare's window)
    previous: ModelPin | None = None
    models: dict[str, ModelSlot] = field(default_factory=dict)  # named models, never "default"

    def slot(self, name: str) -> ModelSlot | None:
        """The pins of model ``name`` (None: a named model this stage does not run yet)."""
        if name == DEFAULT_MODEL:
            return ModelSlot(self.live, self.candidate, self.candidate_since, self.previous)
        return self.models.get(check_model_name(name))

    def with_slot(self, name: str, slot: ModelSlot) -> DeployConfig:
        if name == DEFAULT_MODEL:
            return replace(
                self, live=slot.live, candidate=slot.candidate, candidate_since=slot.candidate_since,
                previous=slot.previous,
            )  # fmt: skip
        return replace(self, models={**self.models, check_model_name(name): slot})

    def to_file(self) -> dict[str, Any]:
        """The params serverless.yml reads (flat keys), the named models, and the rollback target."""
        candidate = self.candidate
        data: dict[str, Any] = {
            "modelVersion": self.live.version,
            "modelUri": self.live.uri,
            "modelSha256": self.live.sha256,
            "candidateVersion": candidate.version if candidate else "none",
            "candidateModelUri": candidate.uri if candidate else "",
            "candidateModelSha256": candidate.sha256 if candidate else "",
            "shadowSampleRate": self.shadow_sample_rate,
            "candidateSince": self.candidate_since or "",
            "previous": asdict(self.previous) if self.previous else None,
        }
        if self.models:
            data["models"] = {name: _slot_to_file(slot) for name, slot in sorted(self.models.items())}
        data["namedModels"] = self.named_models_json()
        return data

    @classmethod
    def from_file(cls, data: dict[str, Any]) -> DeployConfig:
        candidate = None
        if data.get("candidateModelUri"):
            candidate = ModelPin(
                data["candidateVersion"], data["candidateModelUri"], data["candidateModelSha256"]
            )
        previous = ModelPin(**data["previous"]) if data.get("previous") else None
        models = data.get("models") or {}
        if not isinstance(models, dict):
            raise TypeError("'models' must map each model name to its pins")
        return cls(
            live=ModelPin(
                data["modelVersion"], data["modelUri"], data.get("modelSha256", "")
            ),  # refused when empty
            candidate=candidate,
            shadow_sample_rate=float(data.get("shadowSampleRate", env.DEFAULT_SHADOW_SAMPLE_RATE)),
            candidate_since=data.get("candidateSince") or None,
            previous=previous,
            models={check_model_name(name): _slot_from_file(slot) for name, slot in models.items()},
        )

    def named_models_json(self) -> str:
        """CAMSORT_NAMED_MODELS: each named model's URI and pin (and its candidate's); "" for none."""
        if not self.models:
            return ""
        named = {}
        for name, slot in sorted(self.models.items()):
            entry = {"uri": slot.live.uri, "sha256": slot.live.sha256}
            if slot.candidate is not None:
                entry |= {"candidate_uri": slot.candidate.uri, "candidate_sha256": slot.candidate.sha256}
            named[name] = entry
        return json.dumps(named, sort_keys=True, separators=(",", ":"))

    def function_environment(self) -> dict[str, str]:
        """The function's variables for this config (the local worker's ``extra``)."""
        candidate = self.candidate
        environment = {
            env.MODEL_URI: self.live.uri,
            env.MODEL_SHA256: self.live.sha256,
            env.CANDIDATE_MODEL_URI: candidate.uri if candidate else "",
            env.CANDIDATE_MODEL_SHA256: candidate.sha256 if candidate else "",
            env.SHADOW_SAMPLE_RATE: str(self.shadow_sample_rate),
        }
        if self.models:
            environment[NAMED_MODELS_VARIABLE] = self.named_models_json()
        return environment


def _slot_to_file(slot: ModelSlot) -> dict[str, Any]:
    data: dict[str, Any] = {
        "modelVersion": slot.live.version,
        "modelUri": slot.live.uri,
        "modelSha256": slot.live.sha256,
    }
    if slot.candidate is not None:
        data |= {
            "candidateVersion": slot.candidate.version,
            "candidateModelUri": slot.candidate.uri,
            "candidateSha256": slot.candidate.sha256,
            "candidateSince": slot.candidate_since or "",
        }
    if slot.previous is not None:
        data["previous"] = asdict(slot.previous)
    return data


def _slot_from_file(data: dict[str, Any]) -> ModelSlot:
    candidate = None
    if data.get("candidateModelUri"):
        candidate = ModelPin(
            data["candidateVersion"], data["candidateModelUri"], data.get("candidateSha256", "")
        )
    return ModelSlot(
        live=ModelPin(data["modelVersion"], data["modelUri"], data.get("modelSha256", "")),
        candidate=candidate,
        candidate_since=data.get("candidateSince") or None,
        previous=ModelPin(**data["previous"]) if data.get("previous") else None,
    )
