"""`camsort train`: images in, model directory out (model.onnx + manifest.json + report.*).

The chain (docs/design.md, "The flow"):

1. load the training set (one loader for every image: the function's own);
2. the fp32 ONNX backbone for (weights, seed), converted once and cached;
3. unless fp32 is requested: the int8 backbone (static QDQ), calibrated on a seeded sample
   of the training frames, cached by (fp32 backbone, calibration frames);
4. features through onnxruntime with each candidate backbone (cached per image);
5. near-duplicate groups (dhash), so that no fold splits a frame from its copy;
6. cross-validation of LightGBM on fp32 and, when int8 is considered, on int8 features with
   the same folds; the int8 guard compares the two;
7. the shipped precision: ``auto`` ships int8 when the guard passes, else fp32 (and says
   why); ``int8`` ships int8 whatever the guard says (the guard is still recorded); ``fp32``
   never quantizes;
8. decision thresholds from the shipped precision's out-of-fold predictions;
9. the final LightGBM on all frames, converted and merged into the shipped backbone;
10. the parity gate: the fp32 merged graph against Keras + LightGBM, and, when int8 ships,
    the shipped model's trees against LightGBM on its own features. A failure raises
    ``ParityError`` and leaves ``out_dir`` untouched;
11. model.onnx, manifest.json, report.json/.html/.png in ``out_dir``; the CV table on screen.

The int8 steps (calibration, the cached int8 backbone, the precision choice and its record) are
in ``training.precision``; the export and parity gate of step 10 in ``training.export_step``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from functions import env
from functions.cpu import int8_kernel_family
from functions.errors import ConfigurationError
from functions.frames.manifest import (
    FEATURE_SIZE,
    MODEL_FILENAME,
    Manifest,
    sha256_file,
    write_manifest,
)
from training.backbone_features import backbone_features
from training.crossval import CVResult
from training.export_step import export_and_check, tool_versions
from training.finetune import fine_tune_step, tuned_backbone_path
from training.finetune_net import TuneSettings
from training.precision import (
    choose_precision,
    quantization_summary,
)
from training.thresholds import GuardResult

PRECISION_CHOICES = ("auto", "fp32", "int8")
BACKBONE_NAME = "ResNet50"
DEFAULT_CACHE_DIR = Path("~/.cache/camsort")

# Keras backbones built in this process, by (weights, seed): building a ResNet50 takes
# seconds to tens of seconds, and the parity gate needs the model every run.
_KERAS_BACKBONES: dict[tuple[str, int], Any] = {}


@dataclass(frozen=True)
class TrainResult:
    model_dir: Path
    manifest: Manifest
    cv: CVResult  # cross-validation of the shipped precision
    other_cv: dict[str, CVResult]  # the precision that was compared but not shipped
    guard: GuardResult | None  # None when fp32 was requested
    precision: str
    precision_reason: str
    parity: dict[str, Any]
    report_paths: Any  # training.report.ReportPaths
    featurize_stats: dict[str, dict[str, int]]  # precision -> {"cache_hits", "computed"}
    backbones: dict[str, Path]  # precision -> the (cached) ONNX backbone its features came from
    fine_tuning: Any = None  # training.finetune.FineTuneOutcome when --fine-tune ran

    def __fspath__(self) -> str:
        """A TrainResult stands for its model directory: ``Path(train(...))`` works."""
        return str(self.model_dir)


def default_cache_dir() -> Path:
    return Path(os.environ.get(env.CACHE_DIR) or DEFAULT_CACHE_DIR).expanduser()


def keras_backbone(weights: str, seed: int = 0):
    """The Keras ResNet50 for (weights, seed), built once per process."""
    from export.backbone import build_keras_backbone

    key = (weights, seed)
    if key not in _KERAS_BACKBONES:
        _KERAS_BACKBONES[key] = build_keras_backbone(weights, seed=seed)
    return _KERAS_BACKBONES[key]


def share_keras_backbone(weights: str, seed: int, model) -> None:
    """Hand an already built backbone to ``train`` (tests: one ResNet50 build per session)."""
    _KERAS_BACKBONES[(weights, seed)] = model


def train(
    source: str | Sequence[str],
    out_dir: Path | str,
    *,
    weights: str = "imagenet",
    folds: int = 5,
    seed: int = 0,
    precision: str = "auto",
    cache_dir: Path | str | None = None,
    s3_client=None,
    calibration_size: int = 64,
    parity_sample: int = 16,
    params: dict[str, Any] | None = None,
    target_precision: float | None = None,
    progress: bool = True,
    console=None,
    head: str = "lightgbm",
    fine_tune: TuneSettings | None = None,
    fine_tune_ship: str = "always",
) -> TrainResult:
    """Train and export a model from the images under ``source`` (one or several) into ``out_dir``.

    ``fine_tune``: also fine-tune the top of the network (training.finetune: cross-fitted on the
    same folds, so frozen and fine-tuned are compared on the same frames); ``fine_tune_ship``:
    ``always`` ships the fine-tuned network, ``if-better`` only when its cross-fitted balanced
    accuracy beats the frozen one's.
    """
    from rich.console import Console

    from export.backbone import weights_label
    from training.crossval import cross_validate
    from training.dataset import load_dataset
    from training.heads import choose_head, cross_validate_heads, fit_head, head_to_onnx, single_fit
    from training.label_files import link_to_label_sets
    from training.neardup import DEFAULT_MAX_DISTANCE
    from training.report import print_cv_table, print_side_by_side, select_worst_frames, write_report
    from training.thresholds import DEFAULT_TARGET_PRECISION, precision_guard

    if precision not in PRECISION_CHOICES:
        raise ConfigurationError(f"precision {precision!r}: choose one of {', '.join(PRECISION_CHOICES)}")
    if folds < 2:
        raise ConfigurationError(f"folds={folds}: cross-validation needs at least 2 folds")
    console = console or Console()
    target_precision = DEFAULT_TARGET_PRECISION if target_precision is None else target_precision
    out_dir = Path(out_dir)
    cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    label_of_weights = weights_label(weights)  # validates an .h5 path before any heavy work

    def step(message: str) -> None:
        console.print(f"[bold cyan]›[/] {message}")

    step(f"loading the training set from {source if isinstance(source, str) else ' + '.join(source)}")
    dataset = load_dataset(source, min_per_label=folds, s3_client=s3_client, progress=progress)
    pixels, y, sha256s, labels = dataset.pixels(), dataset.targets(), dataset.sha256s(), dataset.labels
    uris = [item.uri for item in dataset.items]
    counts = dataset.counts()
    step(
        f"{len(y)} frames: "
        + ", ".join(f"{label} {n}" for label, n in counts.items())
        + f"; {len(dataset.skipped)} skipped"
    )

    # The same options featurize the frozen backbone here and, below, a fine-tuned one.
    featurize_options: dict[str, Any] = {
        "weights": weights,
        "weights_label": label_of_weights,
        "seed": seed,
        "precision": precision,
        "calibration_size": calibration_size,
        "cache_dir": cache_dir,
        "progress": progress,
        "step": step,
    }
    prepared = backbone_features(pixels, sha256s, **featurize_options)
    keras_model, backbones, features = prepared.keras_model, prepared.backbones, prepared.features
    featurize_stats, groups = prepared.featurize_stats, prepared.groups

    task = "binary" if len(labels) == 2 else "multiclass"
    step(f"cross-validating the {head} head(s) on fp32 features ({folds} folds)")
    heads = cross_validate_heads(
        head,
        task,
        features["fp32"],
        y,
        groups.group_ids,
        labels,
        folds=folds,
        seed=seed,
        params=params,
        progress=progress,
        target_precision=target_precision,
    )
    head, head_reason = choose_head(head, heads)
    step(f"head: {head}: {head_reason}")
    cvs: dict[str, CVResult] = {"fp32": heads[head]}
    tuning = None
    if fine_tune is not None:

        def cross_validate_with(fold_features):
            return cross_validate(
                features["fp32"], y, groups.group_ids, labels, folds=folds, seed=seed, params=params,
                target_precision=target_precision, progress=False, fit=single_fit(head, seed),
                fold_features=fold_features,
            )  # fmt: skip

        tuning, shipping_tuned = fine_tune_step(
            keras_model, pixels, sha256s, y, groups.group_ids, heads[head], settings=fine_tune,
            ship=fine_tune_ship, metric="balanced_accuracy", n_outputs=len(labels),
            cross_validate_with=cross_validate_with, backbone_key=f"{label_of_weights}|seed {seed}",
            cache_dir=cache_dir, progress=progress, console=console, step=step,
        )  # fmt: skip
        if shipping_tuned:
            tuned = (tuning.keras_model, tuned_backbone_path(tuning.keras_model, cache_dir))
            prepared = backbone_features(pixels, sha256s, **featurize_options, tuned=tuned)
            keras_model, backbones, features = prepared.keras_model, prepared.backbones, prepared.features
            featurize_stats = prepared.featurize_stats
            # The fine-tuned network saw every frame: a CV on its features would flatter it. The
            # figures and thresholds are the cross-fitted ones; the CVs below only compare precisions.
            cvs = {}
    for name in backbones:
        if name in cvs:
            continue
        step(f"cross-validating the {head} head on {name} features ({folds} folds)")
        cvs[name] = cross_validate(
            features[name],
            y,
            groups.group_ids,
            labels,
            folds=folds,
            seed=seed,
            params=params,
            target_precision=target_precision,
            progress=progress,
            fit=single_fit(head, seed),
        )

    guard = None
    if "int8" in cvs:
        guard = precision_guard(cvs["fp32"].oof_probabilities, cvs["int8"].oof_probabilities, y)
        step(f"int8 guard: {'pass' if guard.passed else 'FAIL'}: {guard.reason}")
    shipped, reason = choose_precision(precision, guard)
    step(f"shipping {shipped}: {reason}")
    cv = cvs[shipped]
    others = {name: other for name, other in cvs.items() if name != shipped}
    if tuning is not None:
        if shipping_tuned:
            # The CVs above ran on the final network, which saw every frame: they only fed the int8
            # guard (fp32 against int8 on the same network). Figures and thresholds: the cross-fit.
            cv, others = tuning.cv, {"frozen": heads[head]}
        else:
            others["fine-tuned (not shipped)"] = tuning.cv

    step(f"fitting the final {head} head on all frames and exporting model.onnx")
    classifier = fit_head(head, task, features[shipped], y, labels, params=params, seed=seed)
    trees = head_to_onnx(head, task, classifier, FEATURE_SIZE, list(labels))
    with tempfile.TemporaryDirectory(prefix="camsort-train-", dir=cache_dir) as work_dir:
        work = Path(work_dir)
        candidate, parity = export_and_check(
            backbones, shipped, classifier, trees, labels, keras_model, pixels, seed, parity_sample, work
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        model_path = out_dir / MODEL_FILENAME
        staged = out_dir / f".{MODEL_FILENAME}.tmp-{os.getpid()}"
        shutil.copyfile(candidate, staged)
        os.replace(staged, model_path)
    step(
        "parity: features max |diff| {:.2g}, probabilities max |diff| {:.2g}, labels identical".format(
            parity["fp32_vs_keras"]["features_max_abs_diff"],
            max(figures["probabilities_max_abs_diff"] for figures in parity.values()),
        )
    )

    sha = sha256_file(model_path)
    now = datetime.now(UTC)
    training_set = {
        **dataset.summary(),
        "near_duplicates": {
            "groups": groups.n_groups,
            "merged": groups.merged,
            "max_distance": DEFAULT_MAX_DISTANCE,
        },
    }
    quantization = quantization_summary(precision, shipped, reason, guard, calibration_size, len(y))
    if guard is not None and tuning is not None and tuning.shipped:
        quantization["guard_frames"] = (
            "out-of-fold heads on the final fine-tuned network's features, which saw every frame: "
            "the guard compares fp32 with int8 on one network; it is not an accuracy estimate"
        )
    manifest = Manifest(
        labels=list(labels),
        task="binary" if len(labels) == 2 else "multiclass",
        thresholds=cv.thresholds.as_dict(),
        backbone=BACKBONE_NAME,
        weights=label_of_weights,
        precision=shipped,
        model_sha256=sha,
        model_version=f"{now:%Y%m%dT%H%M%SZ}-{sha[:8]}",
        backbone_sha256=sha256_file(backbones[shipped]),
        created_at=now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        cv_summary={**cv.summary(), "head": head, "head_choice": head_reason},
        training_set=training_set,
        parity=parity,
        quantization=quantization,
        tools=tool_versions(),
        int8_kernels=int8_kernel_family() if guard is not None else "",
        fine_tuning=tuning.record() if tuning is not None else {},
    )
    write_manifest(out_dir, manifest)

    report_paths = write_report(
        out_dir,
        cv=cv,
        dataset_summary={
            **dataset.summary(),
            "skipped": [{"uri": s.uri, "reason": s.reason, "detail": s.detail} for s in dataset.skipped],
        },
        neardup=training_set["near_duplicates"],
        thresholds=cv.thresholds,
        guard=guard,
        parity=parity,
        manifest=manifest,
        worst_frames=link_to_label_sets(select_worst_frames(cv, uris, pixels), source),
        other_cv=others,
    )
    if weights == "none":
        console.print(
            "[bold yellow]The backbone is randomly initialised (--weights none): these figures are not "
            "representative of a model built on ImageNet weights.[/]"
        )
    tuned_shipped = tuning is not None and tuning.shipped
    print_cv_table(
        cv,
        console,
        title=(
            f"cross-fitted fine-tuned network, {head} head ({folds} grouped folds, seed {seed})"
            if tuned_shipped
            else f"cross-validation, {shipped} features, {head} head ({folds} grouped folds, seed {seed})"
        ),
    )
    if tuning is not None:
        print_side_by_side(
            {"frozen": heads[head], "fine-tuned (cross-fitted)": tuning.cv},
            console,
            title=f"frozen vs fine-tuned ({tuning.settings.from_stage}), the same {len(y)} frames and {folds} folds",
        )
        console.print(f"fine-tuning {tuning.decision}")
    if len(heads) > 1:
        from training.multilabel_report import add_heads_to_report, print_heads_table

        print_heads_table(heads, console)
        add_heads_to_report(out_dir, heads, head_reason)
    step(f"model written to {out_dir} (model.onnx sha256 {sha[:12]}…, report: {report_paths.html})")
    return TrainResult(
        model_dir=out_dir,
        manifest=manifest,
        cv=cv,
        other_cv=others,
        guard=guard,
        precision=shipped,
        precision_reason=reason,
        parity=parity,
        report_paths=report_paths,
        featurize_stats=featurize_stats,
        backbones=dict(backbones),
        fine_tuning=tuning,
    )
