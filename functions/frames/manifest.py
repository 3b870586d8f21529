"""The model artifact contract: ``model.onnx`` + ``manifest.json`` in one directory.

Export writes the manifest (``export/``), the function reads it (``functions/``); both go
through this module so the two sides cannot drift. Pure: json and hashlib only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from functions.errors import ModelArtifactError, ModelIntegrityError

FORMAT_VERSION = 1
MODEL_FILENAME = "model.onnx"
MANIFEST_FILENAME = "manifest.json"
TASKS = ("binary", "multiclass", "multilabel")
PRECISIONS = ("fp32", "int8")
UNKNOWN_LABEL = "unknown"
UNFAMILIAR_LABEL = "unfamiliar"  # a frame unlike the training frames (functions.familiarity)

# The model's I/O names, fixed by the model artifact contract (docs/design.md).
INPUT_NAME = "image"
PROBABILITIES_OUTPUT = "probabilities"
FEATURES_OUTPUT = "features"
IMAGE_SIZE = 224
FEATURE_SIZE = 2048


@dataclass(frozen=True)
class InputSpec:
    name: str = INPUT_NAME
    height: int = IMAGE_SIZE
    width: int = IMAGE_SIZE
    channels: int = 3
    layout: str = "NHWC"
    dtype: str = "uint8"
    color: str = "RGB"
    # How the caller resizes: the whole frame, no crop, bilinear, after EXIF orientation.
    resize: str = "bilinear"


@dataclass(frozen=True)
class Manifest:
    labels: list[str]
    task: str
    thresholds: dict[str, float]
    backbone: str
    weights: str  # "imagenet" | "none" | the .h5 file name
    precision: str  # "fp32" | "int8"
    model_sha256: str
    model_version: str
    created_at: str  # ISO 8601 UTC
    input: InputSpec = field(default_factory=InputSpec)
    cv_summary: dict[str, Any] = field(default_factory=dict)
    training_set: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)
    quantization: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)
    # sha256 of the backbone ONNX file whose pooled output is ``features`` (the local feature
    # cache's key, training/features/featurize.py). Feature shards written by a featurize backfill are
    # keyed by it; "" in manifests written before it was recorded (featurize refuses those).
    backbone_sha256: str = ""
    # The int8 kernel family (functions.cpu) of the CPU the int8 guard ran on; "" when no
    # guard ran. The function warns at cold start when its own CPU's family differs.
    int8_kernels: str = ""
    # `camsort train --fine-tune`: the trained stages, epochs, augmentation, time and the
    # evaluation method, whether it shipped and why (training.fit.finetune); {} when not asked for.
    fine_tuning: dict[str, Any] = field(default_factory=dict)
    # What the training frames' pooled features look like, the distance threshold calibrated on
    # them and the training prior (functions.familiarity, training.fit.familiarity); {} in
    # manifests written before it existed: such a model never answers ``unfamiliar``.
    familiarity: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "manifest.json") -> Manifest:
        try:
            version = data["format_version"]
            if version != FORMAT_VERSION:
                raise ModelArtifactError(
                    f"{source}: format_version {version} is not supported (expected {FORMAT_VERSION}); "
                    "re-export the model with this version of camsort"
                )
            fields = dict(data)
            fields["input"] = InputSpec(**data["input"])
            manifest = cls(**fields)
        except (KeyError, TypeError) as exc:
            raise ModelArtifactError(f"{source}: malformed manifest ({exc!r}); re-export the model") from exc
        manifest.validate(source)
        return manifest

    def validate(self, source: str = "manifest.json") -> None:
        problems = []
        if self.task not in TASKS:
            problems.append(f"task {self.task!r} not in {TASKS}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision {self.precision!r} not in {PRECISIONS}")
        # multi-label: one independent yes/no per label, so a single label is a model too
        fewest = 1 if self.task == "multilabel" else 2
        if len(self.labels) < fewest or len(set(self.labels)) != len(self.labels):
            problems.append(f"labels {self.labels!r} must be at least {fewest} distinct name(s)")
        if UNKNOWN_LABEL in self.labels:
            problems.append(f"{UNKNOWN_LABEL!r} is reserved for below-threshold answers")
        if UNFAMILIAR_LABEL in self.labels:
            problems.append(f"{UNFAMILIAR_LABEL!r} is reserved for frames unlike the training frames")
        if self.task == "binary" and len(self.labels) != 2:
            problems.append("a binary task has exactly two labels")
        if set(self.thresholds) != set(self.labels):
            problems.append("thresholds must name every label exactly once")
        if any(not 0.0 <= t <= 1.0 for t in self.thresholds.values()):
            problems.append("thresholds must lie in [0, 1]")
        if self.backbone_sha256 and len(self.backbone_sha256) != 64:
            problems.append("backbone_sha256 must be a hex sha256 (or empty)")
        if len(self.model_sha256) != 64:
            problems.append("model_sha256 must be a hex sha256")
        if problems:
            raise ModelArtifactError(f"{source}: " + "; ".join(problems))


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(model_dir: Path, manifest: Manifest) -> Path:
    manifest.validate(str(model_dir / MANIFEST_FILENAME))
    path = Path(model_dir) / MANIFEST_FILENAME
    path.write_text(json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n")
    return path


def read_manifest(model_dir: Path) -> Manifest:
    path = Path(model_dir) / MANIFEST_FILENAME
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ModelArtifactError(
            f"{path}: no manifest; point {MODEL_FILENAME}'s directory at an exported model"
        ) from exc
    except json.JSONDecodeError as exc:
        raise ModelArtifactError(f"{path}: not valid JSON ({exc}); re-export the model") from exc
    return Manifest.from_dict(data, source=str(path))


def load_verified(model_dir: Path) -> tuple[Path, Manifest]:
    """Read the manifest and check model.onnx against its sha256. Refuses a mismatch."""
    model_dir = Path(model_dir)
    manifest = read_manifest(model_dir)
    model_path = model_dir / MODEL_FILENAME
    if not model_path.is_file():
        raise ModelArtifactError(f"{model_path}: missing; the model directory must hold {MODEL_FILENAME}")
    actual = sha256_file(model_path)
    if actual != manifest.model_sha256:
        raise ModelIntegrityError(
            f"{model_path}: sha256 {actual} does not match manifest.json ({manifest.model_sha256}); "
            "the model file was changed or replaced — upload model.onnx and manifest.json together"
        )
    return model_path, manifest
