"""The stages of ``training.pipeline.train``, each written once for every task and feature source.

A stage asks the task (``training.tasks``) and the source (``training.sources``) for what differs
between them, and does the rest itself.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from export.backbone import weights_label
from functions.frames.manifest import FEATURE_SIZE, MODEL_FILENAME, Manifest, sha256_file, write_manifest
from training.export_step import move_into, parity_line, tool_versions
from training.familiarity_step import describe_familiarity
from training.features.backbone import keras_network, resolve_cache_dir
from training.fit.finetune import fine_tune_step
from training.fit.heads import choose_head, head_to_onnx
from training.report.familiarity import add_familiarity_to_report
from training.settings import TrainingSet, TrainSettings
from training.sources import FeatureSource, FittedHead
from training.tasks import Evaluation, Task


@dataclass(frozen=True)
class Run:
    """The settings of one run and where it reports its progress."""

    settings: TrainSettings
    console: Any

    @classmethod
    def start(cls, settings: TrainSettings, console=None) -> Run:
        from rich.console import Console

        settings.check()
        return cls(settings, console or Console())

    def step(self, message: str) -> None:
        self.console.print(f"[bold cyan]›[/] {message}")


@dataclass(frozen=True)
class Precision:
    shipped: str  # the precision of the backbone that ships (fp32 | int8)
    reason: str


def cross_validate_heads(
    task: Task, source: FeatureSource, data: TrainingSet, run: Run
) -> tuple[dict[str, Any], str, str]:
    """Every requested head on the same folds (reference features); the one that ships, and why."""
    settings = run.settings
    heads = source.cross_validate_heads(task, data, settings, run.step)
    head, reason = choose_head(settings.head, heads)
    run.step(f"head: {head}: {reason}")
    return heads, head, reason


def fine_tune(
    task: Task, source: FeatureSource, data: TrainingSet, frozen_cv: Any, head: str, run: Run
) -> tuple[Any, TrainingSet]:
    """``--fine-tune``: cross-fitted on the frozen CV's folds; when it ships, the frames are
    featurized again through the tuned network (training.fit.finetune)."""
    settings = run.settings
    if settings.fine_tune is None:
        return None, data
    tuning, shipping = fine_tune_step(
        keras_network(data.keras_model, settings.weights, settings.seed), data.frames, data.sha256s, data.y, data.groups.group_ids, frozen_cv,
        settings=settings.fine_tune, ship=settings.fine_tune_ship, metric=task.tuning_metric,
        n_outputs=len(data.labels), multilabel=task.multilabel,
        cross_validate_with=task.cross_fit(head, data, frozen_cv, settings),
        backbone_key=f"{weights_label(settings.weights)}|seed {settings.seed}",
        cache_dir=resolve_cache_dir(settings.cache_dir), progress=settings.progress, console=run.console,
        step=run.step,
    )  # fmt: skip
    if shipping:
        data = source.with_tuned_backbone(data, tuning.keras_model, settings, run.step)
    else:
        data = source.with_frozen_int8(data, settings, run.step)
    return tuning, data


def evaluate_precisions(
    task: Task,
    source: FeatureSource,
    data: TrainingSet,
    heads: dict[str, Any],
    head: str,
    head_reason: str,
    tuning: Any,
    run: Run,
) -> tuple[Evaluation, Precision]:
    """The chosen head on each candidate precision's features, the int8 guard, the shipped precision."""
    settings, frozen = run.settings, heads[head]
    tuned = tuning is not None and tuning.shipped
    # The fine-tuned network saw every frame: a CV on its features would flatter it. Its figures
    # and thresholds are the cross-fitted ones; the CVs below then only feed the int8 guard, so
    # with one precision to ship they are not run (the demo's fp32: 3 head fits, ~4 s, saved).
    cvs = {} if tuned else {data.reference: frozen}
    guarded = "fp32" in data.features and "int8" in data.features
    for name, features in data.features.items():
        if name not in cvs and (guarded or not tuned):
            run.step(f"cross-validating the {head} head on {name} features ({settings.folds} folds)")
            cvs[name] = task.cross_validate_heads(head, features, data, settings, fold_of=frozen.fold_of)[
                head
            ]
    guard = None
    if "fp32" in cvs and "int8" in cvs:
        guard = task.guard(cvs["fp32"], cvs["int8"], data.y)
        run.step(f"int8 guard: {'pass' if guard.passed else 'FAIL'}: {guard.reason}")
    shipped, reason = source.choose_precision(settings, guard)
    run.step(f"shipping {shipped}: {reason}")
    if tuned:
        cv, others = tuning.cv, {"frozen": frozen}
    else:
        cv, others = cvs[shipped], {name: other for name, other in cvs.items() if name != shipped}
        if tuning is not None:
            others["fine-tuned (not shipped)"] = tuning.cv
    return Evaluation(cv, others, heads, head, head_reason, guard, tuning), Precision(shipped, reason)


def fit_final_head(
    task: Task, source: FeatureSource, data: TrainingSet, shipped: str, head: str, cv: Any, run: Run
) -> FittedHead:
    """The head on every frame's features (the shipped precision's), converted to ONNX."""
    kind = task.kind(data.labels)
    run.step(f"fitting the final {head} head on all frames and exporting model.onnx")
    classifier = source.fit_head(task, data, shipped, head, run.settings)
    trees = head_to_onnx(head, kind, classifier, FEATURE_SIZE, list(data.labels))
    return FittedHead(classifier, trees, task.parity_thresholds(cv))


@contextmanager
def export_model(
    source: FeatureSource, data: TrainingSet, shipped: str, fitted: FittedHead, out_dir: Path, run: Run
) -> Iterator[tuple[Path, dict[str, Any]]]:
    """model.onnx and its parity gate in a staging directory beside ``out_dir``; what the caller
    writes there too is moved into ``out_dir`` at the end, and nothing is when anything fails."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.", dir=out_dir.parent) as work:
        staged = Path(work)
        parity = {**data.parity, **source.export(data, shipped, fitted, staged, run.settings)}
        run.step(parity_line(parity))
        yield staged, parity
        move_into(staged, out_dir)


def write_manifest_and_report(
    task: Task,
    source: FeatureSource,
    data: TrainingSet,
    evaluation: Evaluation,
    precision: Precision,
    parity: dict[str, Any],
    staged: Path,
    run: Run,
) -> tuple[Manifest, Any]:
    """manifest.json (the model's sha256, the figures, the backbone's record, the familiarity
    description) and the report."""
    familiarity = describe_familiarity(data, precision.shipped, evaluation.cv.fold_of, run.settings, run.step)
    sha = sha256_file(staged / MODEL_FILENAME)
    now = datetime.now(UTC)
    backbone = source.manifest_fields(
        data, precision.shipped, precision.reason, evaluation.guard, evaluation.tuning, run.settings
    )
    fields: dict[str, Any] = {
        "labels": list(data.labels),
        "model_sha256": sha,
        "model_version": f"{now:%Y%m%dT%H%M%SZ}-{sha[:8]}",
        "created_at": now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "training_set": data.summary,
        "parity": parity,
        "tools": tool_versions(),
        "familiarity": familiarity.manifest_field,
        **backbone,
        **task.manifest_fields(evaluation, data.labels),
    }
    if evaluation.guard is not None and evaluation.tuning is not None and evaluation.tuning.shipped:
        fields["quantization"] = {**fields["quantization"], "guard_frames": task.tuned_guard_note}
    manifest = Manifest(**fields)
    write_manifest(staged, manifest)
    paths = task.write_report(staged, evaluation, data, parity, manifest)
    add_familiarity_to_report(staged, familiarity)
    return manifest, paths


def print_summary(
    task: Task,
    source: FeatureSource,
    evaluation: Evaluation,
    shipped: str,
    manifest: Manifest,
    report_paths: Any,
    out_dir: Path,
    run: Run,
) -> None:
    """The caveat about the backbone, the cross-validation tables, where the model went."""
    caveat = source.caveat(run.settings)
    if caveat:
        run.console.print(f"[bold yellow]{caveat}[/]")
    tuned = evaluation.tuning is not None and evaluation.tuning.shipped
    what = "cross-fitted fine-tuned network" if tuned else f"cross-validation, {source.describe(shipped)}"
    folds = f"{evaluation.cv.folds} grouped folds, seed {run.settings.seed}"
    task.print_summary(evaluation, run.console, title=f"{what}, {evaluation.head} head ({folds})")
    run.step(
        f"model written to {out_dir} (model.onnx sha256 {manifest.model_sha256[:12]}…, report: {report_paths.html})"
    )
