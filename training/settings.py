"""What `camsort train` is asked for, and the training set every stage after loading works on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from functions.errors import ConfigurationError
from functions.familiarity import DEFAULT_FALSE_ALARM_RATE
from training.features.neardup import DEFAULT_MAX_DISTANCE, NearDuplicateGroups, join_groups
from training.fit.finetune import SHIP_CHOICES
from training.fit.finetune_net import TuneSettings

PRECISION_CHOICES = ("auto", "fp32", "int8")


@dataclass(frozen=True)
class TrainSettings:
    """The options of one training run (the task and the feature source are passed beside them)."""

    weights: str = "imagenet"  # imagenet | none | a notop .h5 path (features from the frames only)
    folds: int = 5
    seed: int = 0
    precision: str = "auto"  # auto | fp32 | int8 (features from the frames only)
    head: str = "lightgbm"  # lightgbm | logistic | svm | auto
    cache_dir: Path | str | None = None  # backbone + feature cache (default: $CAMSORT_CACHE_DIR)
    calibration_size: int = 64  # int8 calibration frames
    parity_sample: int = 16  # frames the export's parity gate runs on
    params: dict[str, Any] | None = None  # LightGBM parameters over training.fit.lightgbm's defaults
    target_precision: float | None = None  # single-label thresholds (default: training.fit.thresholds')
    progress: bool = True
    fine_tune: TuneSettings | None = None  # also fine-tune the top of the network (frames only)
    fine_tune_ship: str = "always"  # always | if-better
    # The familiarity threshold: the share of out-of-fold training frames called unfamiliar.
    false_alarm_rate: float = DEFAULT_FALSE_ALARM_RATE
    # Frames of each unfamiliar kind the familiarity check is measured on (0: not measured).
    unfamiliar_per_kind: int = 16

    def check(self) -> None:
        """Refuse settings no stage could honour, before any work."""
        if self.precision not in PRECISION_CHOICES:
            raise ConfigurationError(
                f"precision {self.precision!r}: choose one of {', '.join(PRECISION_CHOICES)}"
            )
        if self.folds < 2:
            raise ConfigurationError(f"folds={self.folds}: cross-validation needs at least 2 folds")
        if not 0.0 < self.false_alarm_rate < 0.5:
            raise ConfigurationError(
                f"false-alarm rate {self.false_alarm_rate}: choose a share between 0 and 0.5 (e.g. 0.01)"
            )
        if self.unfamiliar_per_kind < 0:
            raise ConfigurationError(f"unfamiliar frames per kind {self.unfamiliar_per_kind}: 0 or more")
        if self.fine_tune is not None and self.fine_tune_ship not in SHIP_CHOICES:
            raise ConfigurationError(
                f"fine-tune ship {self.fine_tune_ship!r}: choose one of {', '.join(SHIP_CHOICES)}"
            )


@dataclass
class TrainingSet:
    """The labelled frames and their features, whatever the task and the feature source."""

    labels: list[str]
    y: np.ndarray  # int64 [N] (one label per frame) or uint8 [N, L] (label sets)
    groups: NearDuplicateGroups
    uris: list[str]
    sha256s: list[str]
    frames: Any  # uint8 [N, 224, 224, 3], or a training.report.worst_frames.FrameSource (on demand)
    features: dict[str, np.ndarray]  # precision -> float32 [N, 2048]; the first is the reference
    summary: dict[str, Any]  # the manifest's training_set (near_duplicates included)
    report_summary: dict[str, Any]  # the report's dataset section
    backbones: dict[str, Path] = field(default_factory=dict)  # precision -> ONNX backbone built here
    keras_model: Any = (
        None  # the Keras network the fp32 backbone came from; None: (weights, seed)'s, built when needed
    )
    featurize_stats: dict[str, dict[str, int]] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)  # checks made while loading (stored shards)
    sources: list[str] = field(
        default_factory=list
    )  # the frames' sources as given (labelling sets link back)

    @property
    def reference(self) -> str:
        """The precision every head is first cross-validated on (fp32, or the stored features')."""
        return next(iter(self.features))


def loaded_training_set(
    dataset: Any,
    pixels: np.ndarray,
    groups: NearDuplicateGroups,
    features: dict[str, np.ndarray],
    *,
    step: Callable[[str], None],
    backbones: dict[str, Path],
    featurize_stats: dict[str, dict[str, int]],
    sources: Sequence[str],
    keras_model: Any = None,
    summary: dict[str, Any] | None = None,
) -> TrainingSet:
    """The training set of frames loaded here (``training.data.dataset``'s sets) and featurized:
    near-duplicate groups joined where the set keeps items together (a frame's crops)."""
    together = dataset.same_fold_keys()
    if together is not None:
        groups = join_groups(groups, together)
        step(f"crops of one frame kept in one fold: {groups.n_groups} groups of frames")
    near_duplicates = {
        "groups": groups.n_groups,
        "merged": groups.merged,
        "max_distance": DEFAULT_MAX_DISTANCE,
    }
    recorded = {**dataset.summary(), **(summary or {})}
    skipped = [{"uri": s.uri, "reason": s.reason, "detail": s.detail} for s in dataset.skipped]
    return TrainingSet(
        labels=dataset.labels, y=dataset.targets(), groups=groups, uris=[item.uri for item in dataset.items],
        sha256s=dataset.sha256s(), frames=pixels, features=features,
        summary={**recorded, "near_duplicates": near_duplicates}, report_summary={**recorded, "skipped": skipped},
        backbones=backbones, keras_model=keras_model, featurize_stats=featurize_stats, sources=list(sources),
    )  # fmt: skip
