"""Is a frame like the frames the model was trained on? A distance on the pooled features.

The model's ``features`` output (the pooled backbone, float32 [N, 2048]) comes with every
prediction; the manifest's ``familiarity`` (written at training time, ``training.fit.familiarity``)
describes the training frames' features, and a frame farther from them than the calibrated
threshold is ``unfamiliar``: the classifier's probabilities are relative among the known
labels, and say nothing about a frame that is none of them.

The description is a probabilistic PCA per component (one component per label, or per label
set for a multi-label model): the components' means, a shared within-component covariance kept
as its ``k`` leading directions with their variances (shrunk towards their mean: Ledoit-Wolf),
and one residual variance for everything outside those directions. A frame's squared
Mahalanobis distance to a component is

    sum_i (b_i . r)^2 / var_i + (|r|^2 - sum_i (b_i . r)^2) / residual_variance,  r = x - mean,

and its distance is the smallest over the components, as sqrt(d^2 / 2048) (about 1 for a typical
training frame). The residual term matters: a frame unlike the training set mostly differs in
directions the training frames never varied in. Arrays are float16, base64 in the manifest
(``encode_array``), about 4 KB per component and per direction.

Pure numpy: the function computes it from the features it already has.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np

from functions.errors import ModelArtifactError
from functions.frames.manifest import UNFAMILIAR_LABEL

__all__ = [
    "UNFAMILIAR_LABEL",
    "Familiarity",
    "decode_array",
    "encode_array",
    "familiarity_of",
    "is_unfamiliar",
]
DEFAULT_FALSE_ALARM_RATE = 0.01


def encode_array(values: np.ndarray) -> dict[str, Any]:
    """A float array as float16 little-endian base64, with its shape."""
    data = np.ascontiguousarray(values, dtype="<f2")
    return {"shape": list(data.shape), "float16": base64.b64encode(data.tobytes()).decode("ascii")}


def decode_array(encoded: dict[str, Any]) -> np.ndarray:
    """``encode_array``'s inverse, as float32."""
    raw = base64.b64decode(encoded["float16"], validate=True)
    return np.frombuffer(raw, dtype="<f2").reshape(encoded["shape"]).astype(np.float32)


@dataclass(frozen=True)
class Familiarity:
    """The manifest's description, decoded once per model load."""

    means: np.ndarray  # float32 [C, D]: one row per component
    basis: np.ndarray  # float32 [k, D]: orthonormal leading within-component directions
    variances: np.ndarray  # float32 [k]: the (shrunk) variance along each direction
    residual_variance: float  # per dimension, outside the k directions
    threshold: float  # distance above which a frame is unfamiliar
    false_alarm_rate: float  # the out-of-fold share of training frames above the threshold

    @classmethod
    def from_manifest(cls, description: dict[str, Any], source: str = "manifest.json") -> Familiarity:
        try:
            familiarity = cls(
                means=decode_array(description["means"]),
                basis=decode_array(description["basis"]),
                variances=np.asarray(description["variances"], dtype=np.float32),
                residual_variance=float(description["residual_variance"]),
                threshold=float(description["threshold"]),
                false_alarm_rate=float(description["false_alarm_rate"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelArtifactError(
                f"{source}: malformed familiarity description ({exc!r}); re-train the model"
            ) from exc
        familiarity.check(source)
        return familiarity

    def check(self, source: str) -> None:
        k, dims = self.basis.shape if self.basis.ndim == 2 else (-1, -1)
        problems = []
        if self.means.ndim != 2 or self.means.shape[0] < 1 or self.means.shape[1] != dims:
            problems.append(f"means {list(self.means.shape)} and basis {list(self.basis.shape)} disagree")
        if self.variances.shape != (k,) or not np.all(self.variances > 0):
            problems.append("variances must be one positive number per basis row")
        if not self.residual_variance > 0 or not self.threshold > 0:
            problems.append("residual_variance and threshold must be positive")
        if problems:
            raise ModelArtifactError(f"{source}: familiarity description: " + "; ".join(problems))

    @property
    def dims(self) -> int:
        return int(self.means.shape[1])

    def distances(self, features: np.ndarray) -> np.ndarray:
        """float64 [N]: each row's distance to the nearest component (see the module docstring)."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.dims:
            raise ValueError(f"features shape {features.shape} is not [N, {self.dims}]")
        # One component at a time: r = x - mean directly (no |x|^2 - 2x.m + |m|^2, whose
        # cancellation would swamp the small residual term in float32).
        nearest = np.full(features.shape[0], np.inf)
        for mean in self.means:
            offset = features - mean
            along = offset @ self.basis.T  # [N, k]
            total = np.einsum("nd,nd->n", offset, offset, dtype=np.float64)
            inside = np.einsum("nk,nk->n", along, along, dtype=np.float64)
            squared = (along.astype(np.float64) ** 2 / self.variances).sum(axis=1) + np.maximum(
                total - inside, 0.0
            ) / self.residual_variance
            nearest = np.minimum(nearest, squared)
        return np.sqrt(nearest / self.dims)

    def unfamiliar(self, distances: np.ndarray) -> np.ndarray:
        """bool [N]: above the threshold."""
        return np.asarray(distances) > self.threshold


def familiarity_of(manifest: Any, source: str = "manifest.json") -> Familiarity | None:
    """The model's description, or None for a model trained before familiarity existed."""
    description = getattr(manifest, "familiarity", None)
    return Familiarity.from_manifest(description, source) if description else None


def is_unfamiliar(answer: dict[str, Any] | None) -> bool:
    """A result item's (or JSON answer's) frame was unlike the model's training frames.

    Here rather than beside the answer builders (functions.frames.outputs): the metrics read it,
    and the archive functions, which ship without Pillow, import the metrics."""
    if not answer:
        return False
    return answer.get("label") == UNFAMILIAR_LABEL or bool(answer.get("unfamiliar"))
