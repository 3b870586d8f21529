"""The deployment's named models besides ``default`` (CAMSORT_NAMED_MODELS), parsed and checked.

A camera's regions name the model that answers for them (docs/regions.md); ``default`` is the
deployment's own model (CAMSORT_MODEL_URI / CAMSORT_MODEL_SHA256), every other name comes from
this JSON object::

    {"bay": {"uri": "s3://<modelBucket>/models/bay/<version>/", "sha256": "<model.onnx sha256>",
             "candidate_uri": "...", "candidate_sha256": "..."}}

Every named model is pinned exactly like ``default``: a missing or malformed sha256 is refused
here (at cold start, naming the variable), a model whose file hashes to anything else is refused
when it is opened (:meth:`functions.frames.model.ModelSession.open`). Pure: no AWS calls.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from functions.errors import ConfigurationError
from functions.frames.regions import DEFAULT_MODEL, NAME_PATTERN

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FIELDS = frozenset({"uri", "sha256", "candidate_uri", "candidate_sha256"})


@dataclass(frozen=True)
class NamedModel:
    """One named model of the deployment, and optionally its shadow candidate."""

    name: str
    uri: str
    sha256: str
    candidate_uri: str | None = None
    candidate_sha256: str | None = None


def parse_named_models(text: str, source: str) -> tuple[NamedModel, ...]:
    """``text`` (the variable's JSON) -> the named models, by name; ``ConfigurationError`` naming ``source``."""
    if not text.strip():
        return ()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{source}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigurationError(
            f'{source}: expected an object like {{"bay": {{"uri": ..., "sha256": ...}}}}'
        )
    return tuple(_named_model(name, values, source) for name, values in sorted(raw.items()))


def _named_model(name: str, values: Any, source: str) -> NamedModel:
    where = f"{source} model {name!r}"
    if name == DEFAULT_MODEL:
        raise ConfigurationError(
            f"{where}: 'default' is the deployment's own model (CAMSORT_MODEL_URI); name the others differently"
        )
    if not NAME_PATTERN.fullmatch(name):
        raise ConfigurationError(
            f"{where}: a model name is 1-32 of a-z, 0-9, '_' or '-', starting with a letter or digit"
        )
    if not isinstance(values, dict):
        raise ConfigurationError(f'{where}: expected {{"uri": ..., "sha256": ...}}')
    unknown = sorted(set(values) - _FIELDS)
    if unknown:
        raise ConfigurationError(f"{where}: unknown field(s) {unknown}; known: {sorted(_FIELDS)}")
    uri = str(values.get("uri") or "").strip()
    if not uri:
        raise ConfigurationError(f"{where}: no uri; give the model's s3://<bucket>/models/{name}/<version>/")
    sha256 = _pin(values.get("sha256"), f"{where} sha256")
    if sha256 is None:
        raise ConfigurationError(
            f"{where}: no sha256; every named model is pinned (the value `camsort upload-model --model {name}` printed)"
        )
    candidate_uri = str(values.get("candidate_uri") or "").strip() or None
    candidate_sha256 = _pin(values.get("candidate_sha256"), f"{where} candidate_sha256")
    if candidate_uri and candidate_sha256 is None:
        raise ConfigurationError(
            f"{where}: candidate_uri is set but candidate_sha256 is not; pin the candidate"
        )
    return NamedModel(name, uri, sha256, candidate_uri, candidate_sha256 if candidate_uri else None)


def _pin(value: Any, where: str) -> str | None:
    raw = str(value or "").strip().lower()
    if not raw:
        return None
    if not _SHA256.match(raw):
        raise ConfigurationError(f"{where}={raw!r} is not a sha256 (64 hex digits)")
    return raw
