"""The task strategies of `camsort train`: one label per frame, or a set of labels per frame.

``training.pipeline.train`` runs the same stages for every task; what a task changes is here:
how its frames are labelled and loaded, how a head is cross-validated and fitted (one model over
the labels, or one binary model per label), the int8 guard, the fine-tuning metric, what the
manifest records and how the report is written and shown.

``SingleLabel``: binary or multiclass by the number of label folders. ``MultiLabel``: label sets
from folder names split on a separator, or from a labels file; ``task: multilabel``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from functions.errors import ConfigurationError
from training.data.dataset import (
    DEFAULT_EMPTY_NAME,
    DEFAULT_LABEL_SEP,
    load_dataset,
    load_multilabel_dataset,
)
from training.data.label_files import link_to_label_sets
from training.fit.crossval import cross_validate, cross_validate_multilabel
from training.fit.heads import cross_validate_heads, fit_per_label, single_fit
from training.fit.thresholds import DEFAULT_TARGET_PRECISION, GuardResult, multilabel_guard, precision_guard
from training.report.tables import (
    print_cv_table,
    print_frozen_vs_tuned,
    print_heads_table,
    print_multilabel_tables,
    print_side_by_side,
)
from training.report.worst_frames import select_worst_frames
from training.report.write import (
    add_fine_tuning_to_report,
    add_heads_to_report,
    write_multilabel_report,
    write_report,
)
from training.settings import TrainingSet, TrainSettings

FoldFeatures = Callable[[int, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Evaluation:
    """What the pipeline settled on, for the manifest, the report and the screen."""

    cv: Any  # the shipped model's cross-validation (CVResult | MultiLabelCV)
    others: dict[str, Any]  # the runs only compared (the other precision, frozen vs fine-tuned)
    heads: dict[str, Any]  # every cross-validated head, on the same folds
    head: str
    head_reason: str
    guard: GuardResult | None
    tuning: Any  # training.fit.finetune.FineTuneOutcome | None


class Task(Protocol):
    """A training task: ``SingleLabel`` or ``MultiLabel``."""

    multilabel: bool  # a set of labels per frame (one independent probability per label)
    tuning_metric: str  # the fine-tuning decision's figure (a key of ``cv.mean``, higher is better)
    tuned_guard_note: str  # the manifest's quantization note when the guard ran on a fine-tuned network

    def load(
        self, sources: Sequence[str], *, s3_client: Any, settings: TrainSettings, step: Callable[[str], None]
    ): ...

    def kind(self, labels: Sequence[str]) -> str: ...

    def cross_validate_heads(
        self, head: str, features: np.ndarray, data: TrainingSet, settings: TrainSettings, fold_of=None
    ): ...

    def cross_fit(
        self, head: str, data: TrainingSet, frozen_cv: Any, settings: TrainSettings
    ) -> Callable[[FoldFeatures], Any]: ...

    def guard(self, fp32: Any, int8: Any, y: np.ndarray) -> GuardResult: ...

    def parity_thresholds(self, cv: Any) -> dict[str, float] | None: ...

    def manifest_fields(self, evaluation: Evaluation, labels: list[str]) -> dict[str, Any]: ...

    def write_report(
        self, out_dir: Path, evaluation: Evaluation, data: TrainingSet, parity: dict, manifest: Any
    ): ...

    def print_summary(self, evaluation: Evaluation, console: Any, title: str) -> None: ...


@dataclass(frozen=True)
class SingleLabel:
    """One label per frame, from the first folder under the root; binary or multiclass."""

    multilabel = False
    tuning_metric = "balanced_accuracy"
    tuned_guard_note = (
        "out-of-fold heads on the final fine-tuned network's features, which saw every frame: "
        "the guard compares fp32 with int8 on one network; it is not an accuracy estimate"
    )

    def load(
        self, sources: Sequence[str], *, s3_client: Any, settings: TrainSettings, step: Callable[[str], None]
    ):
        step(f"loading the training set from {' + '.join(sources)}")
        dataset = load_dataset(
            list(sources), min_per_label=settings.folds, s3_client=s3_client, progress=settings.progress
        )
        counts = ", ".join(f"{label} {n}" for label, n in dataset.counts().items())
        step(f"{len(dataset)} frames: {counts}; {len(dataset.skipped)} skipped")
        return dataset

    def kind(self, labels: Sequence[str]) -> str:
        return "binary" if len(labels) == 2 else "multiclass"

    def cross_validate_heads(
        self, head: str, features: np.ndarray, data: TrainingSet, settings: TrainSettings, fold_of=None
    ):
        # Single-label folds depend only on (y, groups, folds, seed): ``fold_of`` is implied.
        return cross_validate_heads(
            head, self.kind(data.labels), features, data.y, data.groups.group_ids, data.labels,
            folds=settings.folds, seed=settings.seed, params=settings.params, progress=settings.progress,
            target_precision=settings.target_precision,
        )  # fmt: skip

    def cross_fit(
        self, head: str, data: TrainingSet, frozen_cv: Any, settings: TrainSettings
    ) -> Callable[[FoldFeatures], Any]:
        def cross_validate_with(fold_features: FoldFeatures):
            return cross_validate(
                data.features[data.reference], data.y, data.groups.group_ids, data.labels,
                folds=settings.folds, seed=settings.seed, params=settings.params,
                target_precision=_target_precision(settings), progress=False,
                fit=single_fit(head, settings.seed), fold_features=fold_features,
            )  # fmt: skip

        return cross_validate_with

    def guard(self, fp32: Any, int8: Any, y: np.ndarray) -> GuardResult:
        return precision_guard(fp32.oof_probabilities, int8.oof_probabilities, y)

    def parity_thresholds(self, cv: Any) -> dict[str, float] | None:
        return None  # the parity gate compares the top label

    def manifest_fields(self, evaluation: Evaluation, labels: list[str]) -> dict[str, Any]:
        cv = evaluation.cv
        return {
            "task": self.kind(labels),
            "thresholds": cv.thresholds.as_dict(),
            "cv_summary": {**cv.summary(), "head": evaluation.head, "head_choice": evaluation.head_reason},
        }

    def write_report(
        self, out_dir: Path, evaluation: Evaluation, data: TrainingSet, parity: dict, manifest: Any
    ):
        cv = evaluation.cv
        paths = write_report(
            out_dir, cv=cv, dataset_summary=data.report_summary, neardup=data.summary["near_duplicates"],
            thresholds=cv.thresholds, guard=evaluation.guard, parity=parity, manifest=manifest,
            worst_frames=link_to_label_sets(select_worst_frames(cv, data.uris, data.frames), data.sources),
            other_cv=evaluation.others,
        )  # fmt: skip
        if len(evaluation.heads) > 1:
            add_heads_to_report(out_dir, evaluation.heads, evaluation.head_reason)
        return paths

    def print_summary(self, evaluation: Evaluation, console: Any, title: str) -> None:
        print_cv_table(evaluation.cv, console, title=title)
        tuning = evaluation.tuning
        if tuning is not None:
            frames, folds = len(evaluation.cv.y), evaluation.cv.folds
            print_side_by_side(
                {"frozen": evaluation.heads[evaluation.head], "fine-tuned (cross-fitted)": tuning.cv},
                console,
                title=f"frozen vs fine-tuned ({tuning.settings.from_stage}), the same {frames} frames and {folds} folds",
            )
            console.print(f"fine-tuning {tuning.decision}")
        if len(evaluation.heads) > 1:
            print_heads_table(evaluation.heads, console)


@dataclass(frozen=True)
class RegionCrops(SingleLabel):
    """One label per region crop: the regions of one named model, cut from labelled frames.

    ``regions`` is the cameras' regions config, ``labels_file`` the labels per region (key,
    region, label), ``model_name`` the named model whose regions are trained (None: the only
    one). Everything after loading is ``SingleLabel``'s; the folds keep a frame's crops together.
    """

    regions: str = ""
    labels_file: str = ""
    model_name: str | None = None

    def load(
        self, sources: Sequence[str], *, s3_client: Any, settings: TrainSettings, step: Callable[[str], None]
    ):
        from training.data.region_dataset import label_counts, load_region_dataset

        if len(sources) != 1:
            raise ConfigurationError(
                f"{' + '.join(sources)}: region labels name frames under ONE DATASET (a folder or s3://bucket/prefix/)"
            )
        step(f"cutting the labelled regions of {sources[0]} ({self.regions}, labels {self.labels_file})")
        dataset = load_region_dataset(
            sources[0], self.regions, self.labels_file, self.model_name, min_per_label=settings.folds,
            s3_client=s3_client, progress=settings.progress,
        )  # fmt: skip
        per_region = "; ".join(
            f"{region} " + ", ".join(f"{label} {n}" for label, n in counts.items())
            for region, counts in label_counts(dataset).items()
        )
        step(
            f"model {dataset.model_name}: {len(dataset)} crops of {len(set(dataset.frame_of))} frames ({per_region}); "
            f"{len(dataset.skipped)} skipped, {dataset.unlabelled} regions without a label"
        )
        return dataset

    def write_report(
        self, out_dir: Path, evaluation: Evaluation, data: TrainingSet, parity: dict, manifest: Any
    ):
        """The single-label report, and in report.json each region's out-of-fold accuracy."""
        paths = super().write_report(out_dir, evaluation, data, parity, manifest)
        report = json.loads(paths.json.read_text())
        report["per_region"] = per_region_accuracy(evaluation.cv, data.uris)
        paths.json.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        return paths


def per_region_accuracy(cv: Any, uris: Sequence[str]) -> dict[str, dict[str, float]]:
    """Out-of-fold accuracy (top label) of each region's crops (``<frame>#<region>`` uris)."""
    predicted = np.asarray(cv.oof_probabilities).argmax(axis=1)
    regions = np.array([uri.rsplit("#", 1)[1] for uri in uris])
    figures = {}
    for region in sorted(set(regions.tolist())):
        mine = regions == region
        figures[region] = {
            "crops": int(mine.sum()),
            "accuracy": round(float((predicted[mine] == np.asarray(cv.y)[mine]).mean()), 4),
        }
    return figures


@dataclass(frozen=True)
class MultiLabel:
    """A set of labels per frame (possibly empty): folder names split on ``label_sep``, or a labels file."""

    label_sep: str = DEFAULT_LABEL_SEP
    labels_file: str | None = None
    empty_name: str = DEFAULT_EMPTY_NAME

    multilabel = True
    tuning_metric = "macro_f1"
    tuned_guard_note = "heads on the final fine-tuned network, which saw every frame: fp32 vs int8 only"

    def load(
        self, sources: Sequence[str], *, s3_client: Any, settings: TrainSettings, step: Callable[[str], None]
    ):
        if len(sources) != 1:
            raise ConfigurationError(
                f"{' + '.join(sources)}: a multi-label training set is one folder or s3://bucket/prefix/"
            )
        step(f"loading the multi-label training set from {sources[0]}")
        dataset = load_multilabel_dataset(
            sources[0], label_sep=self.label_sep, empty_name=self.empty_name, labels_file=self.labels_file,
            min_per_label=settings.folds, s3_client=s3_client, progress=settings.progress,
        )  # fmt: skip
        counts = ", ".join(f"{label} {n}" for label, n in dataset.counts().items())
        step(
            f"{len(dataset)} frames, labels from {dataset.label_source}: {counts}; "
            f"{dataset.summary()['empty_set']} with no label; {len(dataset.skipped)} skipped"
        )
        return dataset

    def kind(self, labels: Sequence[str]) -> str:
        return "multilabel"

    def cross_validate_heads(
        self, head: str, features: np.ndarray, data: TrainingSet, settings: TrainSettings, fold_of=None
    ):
        return cross_validate_heads(
            head, "multilabel", features, data.y, data.groups.group_ids, data.labels, folds=settings.folds,
            seed=settings.seed, params=settings.params, fold_of=fold_of, progress=settings.progress,
        )  # fmt: skip

    def cross_fit(
        self, head: str, data: TrainingSet, frozen_cv: Any, settings: TrainSettings
    ) -> Callable[[FoldFeatures], Any]:
        def cross_validate_with(fold_features: FoldFeatures):
            return cross_validate_multilabel(
                data.features[data.reference], data.y, data.groups.group_ids, data.labels, seed=settings.seed,
                params=settings.params if head == "lightgbm" else None,
                fit=lambda f, t, p, s: fit_per_label(head, f, t, p, s), head=head,
                fold_of=frozen_cv.fold_of, progress=False, fold_features=fold_features,
            )  # fmt: skip

        return cross_validate_with

    def guard(self, fp32: Any, int8: Any, y: np.ndarray) -> GuardResult:
        return multilabel_guard(fp32, int8)

    def parity_thresholds(self, cv: Any) -> dict[str, float] | None:
        return cv.thresholds  # the parity gate compares every label's column and the label sets

    def manifest_fields(self, evaluation: Evaluation, labels: list[str]) -> dict[str, Any]:
        cv = evaluation.cv
        return {
            "task": "multilabel",
            "thresholds": cv.thresholds,
            "cv_summary": {**cv.summary(), "head_choice": evaluation.head_reason},
            # Multi-label manifests have never recorded these two (so a featurize backfill refuses
            # a multi-label model); kept so that the same seed still gives the same bytes.
            "backbone_sha256": "",
            "int8_kernels": "",
        }

    def write_report(
        self, out_dir: Path, evaluation: Evaluation, data: TrainingSet, parity: dict, manifest: Any
    ):
        paths = write_multilabel_report(
            out_dir, cv=evaluation.cv, dataset_summary=data.report_summary,
            neardup=data.summary["near_duplicates"], guard=evaluation.guard, parity=parity, manifest=manifest,
            heads=evaluation.heads, head_reason=evaluation.head_reason,
        )  # fmt: skip
        tuning = evaluation.tuning
        if tuning is not None:
            add_fine_tuning_to_report(out_dir, evaluation.heads[evaluation.head], tuning.cv, tuning.decision)
        return paths

    def print_summary(self, evaluation: Evaluation, console: Any, title: str) -> None:
        heads = evaluation.heads
        print_multilabel_tables(
            evaluation.cv, console, title=f"multi-label {title}", heads=heads if len(heads) > 1 else None
        )
        tuning = evaluation.tuning
        if tuning is not None:
            frames = len(evaluation.cv.y)
            print_frozen_vs_tuned(
                heads[evaluation.head],
                tuning.cv,
                console,
                title=f"frozen vs fine-tuned ({tuning.settings.from_stage}), the same {frames} frames and folds",
            )
            console.print(f"fine-tuning {tuning.decision}")


def _target_precision(settings: TrainSettings) -> float:
    return DEFAULT_TARGET_PRECISION if settings.target_precision is None else settings.target_precision
