"""`camsort train`: one pipeline, whatever the task and wherever the features come from.

``train(task, source, out_dir, settings)`` runs the same stages for every run:

1. load (``source.load``): the labelled frames and their features per precision, near-duplicate
   groups; for stored shards, the source model's backbone proved against them;
2. heads: every requested head cross-validated on the same grouped folds; one is chosen;
3. fine-tuning (``--fine-tune``, frames only): cross-fitted on those folds; when it ships, the
   frames are featurized again through the tuned network;
4. precision: each candidate precision cross-validated, the int8 guard, the shipped precision,
   and the figures and thresholds that go with it;
5. the final head on every frame, as one ONNX graph;
6. export (``source.export``): model.onnx and the parity gate;
7. manifest.json and the report; everything is written into a staging directory beside
   ``out_dir`` and moved in at the end, so a failure (``ParityError`` included) leaves
   ``out_dir`` untouched.

The task (``training.tasks``: ``SingleLabel``, ``MultiLabel``) and the feature source
(``training.sources``: ``Frames``, ``StoredShards``) are the strategies; ``training.stages``
holds the stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from functions.frames.manifest import Manifest
from training.settings import PRECISION_CHOICES, TrainSettings
from training.sources import FeatureSource, Frames, StoredShards
from training.stages import (
    Run,
    cross_validate_heads,
    evaluate_precisions,
    export_model,
    fine_tune,
    fit_final_head,
    print_summary,
    write_manifest_and_report,
)
from training.tasks import MultiLabel, SingleLabel, Task

__all__ = [
    "PRECISION_CHOICES",
    "Frames",
    "MultiLabel",
    "SingleLabel",
    "StoredShards",
    "TrainResult",
    "TrainSettings",
    "train",
]


@dataclass(frozen=True)
class TrainResult:
    model_dir: Path
    manifest: Manifest
    cv: Any  # the shipped model's cross-validation (CVResult | MultiLabelCV)
    other_cv: dict[str, Any]  # the runs only compared (the other precision, frozen vs fine-tuned)
    guard: Any  # training.fit.thresholds.GuardResult | None (None when no int8 was considered)
    precision: str
    precision_reason: str
    parity: dict[str, Any]
    report_paths: Any  # training.report.write.ReportPaths | MultiLabelReportPaths
    featurize_stats: dict[str, dict[str, int]]  # precision -> {"cache_hits", "computed"}
    backbones: dict[str, Path]  # precision -> the (cached) ONNX backbone its features came from
    fine_tuning: Any = None  # training.fit.finetune.FineTuneOutcome when --fine-tune ran

    def __fspath__(self) -> str:
        """A TrainResult stands for its model directory: ``Path(train(...))`` works."""
        return str(self.model_dir)


def train(
    task: Task,
    source: FeatureSource,
    out_dir: Path | str,
    settings: TrainSettings | None = None,
    *,
    console=None,
) -> TrainResult:
    """Train and export a model for ``task`` from ``source``'s features into ``out_dir``."""
    run = Run.start(settings or TrainSettings(), console)
    data = source.load(task, run.settings, run.step)
    heads, head, head_reason = cross_validate_heads(task, source, data, run)
    tuning, data = fine_tune(task, source, data, heads[head], head, run)
    evaluation, precision = evaluate_precisions(task, source, data, heads, head, head_reason, tuning, run)
    fitted = fit_final_head(task, source, data, precision.shipped, head, evaluation.cv, run)
    out_dir = Path(out_dir)
    with export_model(source, data, precision.shipped, fitted, out_dir, run) as (staged, parity):
        manifest, report_paths = write_manifest_and_report(
            task, source, data, evaluation, precision, parity, staged, run
        )
    report_paths = report_paths.relocated(out_dir)
    print_summary(task, source, evaluation, precision.shipped, manifest, report_paths, out_dir, run)
    return TrainResult(
        model_dir=out_dir,
        manifest=manifest,
        cv=evaluation.cv,
        other_cv=evaluation.others,
        guard=evaluation.guard,
        precision=precision.shipped,
        precision_reason=precision.reason,
        parity=parity,
        report_paths=report_paths,
        featurize_stats=data.featurize_stats,
        backbones=dict(data.backbones),
        fine_tuning=tuning,
    )
