"""The familiarity stage of `camsort train`: describe the shipped features, calibrate, measure.

1. the description (``training.fit.familiarity.describe``) of the shipped precision's features,
   its threshold calibrated on out-of-fold distances (the shipped model's folds) at
   ``settings.false_alarm_rate``;
2. the measurement: ``settings.unfamiliar_per_kind`` frames of each kind of
   ``training.data.unfamiliar`` (photographs of other subjects, noise, uniform frames, other
   scenes) through the backbone that ships (features cached like the training frames'), scored by
   the final description against the out-of-fold training frames: ROC, AUC, detection at 1 % and
   5 % false alarms. The figures go into the manifest (``familiarity.evaluation``) and the report.

It runs for every task and feature source; a source without a local backbone (stored shards
whose backbone stays remote) ships the description and skips the measurement, and says so.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.data.unfamiliar import KINDS, unfamiliar_pixels
from training.features.backbone import resolve_cache_dir
from training.fit.familiarity import (
    Described,
    describe,
    detection_table,
    knn_distances,
    knn_out_of_fold,
    training_prior,
)
from training.settings import TrainingSet, TrainSettings


@dataclass(frozen=True)
class FamiliarityOutcome:
    described: Described
    manifest_field: dict[str, Any]
    table: dict[str, dict[str, float]]  # kind -> roc figures ({} when not measured)
    # the alternative measured beside it on the same frames and folds: k-NN (k = 5) distances
    knn_table: dict[str, dict[str, float]] = field(default_factory=dict)
    unfamiliar: dict[str, np.ndarray] = field(default_factory=dict)  # kind -> distances
    skipped: str | None = None  # why the measurement did not run


def describe_familiarity(
    data: TrainingSet, shipped: str, fold_of: np.ndarray, settings: TrainSettings, step: Callable[[str], None]
) -> FamiliarityOutcome:
    features = data.features.get(shipped, data.features[data.reference])
    described = describe(
        features, data.y, fold_of, false_alarm_rate=settings.false_alarm_rate, seed=settings.seed
    )
    f = described.familiarity
    step(
        f"familiarity: {f.means.shape[0]} component(s), {f.basis.shape[0]} directions; threshold {f.threshold:.3f} "
        f"at {settings.false_alarm_rate:.1%} out-of-fold false alarms ({len(described.oof)} frames)"
    )
    field_ = described.manifest_field(list(data.labels), training_prior(data.y, list(data.labels)))
    backbone = data.backbones.get(shipped)
    if settings.unfamiliar_per_kind <= 0 or backbone is None:
        why = (
            "not asked for (--unfamiliar-frames 0)"
            if settings.unfamiliar_per_kind <= 0
            else "no local backbone to featurize with"
        )
        step(f"familiarity not measured on unfamiliar frames ({why})")
        return FamiliarityOutcome(described, field_, {}, skipped=why)
    from training.features.featurize import featurize

    distances, knn = {}, {}
    for kind in KINDS:
        pixels = unfamiliar_pixels(kind, settings.unfamiliar_per_kind, seed=settings.seed)
        keys = [hashlib.sha256(frame.tobytes()).hexdigest() for frame in pixels]
        computed = featurize(
            pixels, keys, backbone, cache_dir=resolve_cache_dir(settings.cache_dir), progress=False
        )
        distances[kind] = f.distances(computed.features)
        knn[kind] = knn_distances(features, computed.features)
    table = detection_table(described.oof, distances)
    knn_table = detection_table(knn_out_of_fold(features, fold_of), knn)
    step("unfamiliar frames: " + "; ".join(_line(kind, figures) for kind, figures in table.items()))
    if "all" in knn_table:
        step("for comparison, k-NN distances (k = 5): " + _line("all", knn_table["all"]))
    field_["evaluation"] = {"per_kind": settings.unfamiliar_per_kind, "seed": settings.seed, "kinds": table}
    return FamiliarityOutcome(described, field_, table, unfamiliar=distances, knn_table=knn_table)


def _line(kind: str, figures: dict[str, float]) -> str:
    return (
        f"{kind} AUC {figures['auc']:.3f}, detected {figures['detected_at_0.01']:.0%} at 1 % / "
        f"{figures['detected_at_0.05']:.0%} at 5 % false alarms"
    )
