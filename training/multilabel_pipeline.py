"""`camsort train --task multilabel`: label sets in, one ONNX model out.

The same chain as ``training.pipeline.train`` (and its helpers: the cached backbones, the
int8 calibration, the precision choice), with the multi-label parts in their place:

1. the label sets (``training.multilabel_data``): folder names split on ``label_sep`` or a
   labels file;
2. features through the shipped backbone(s), near-duplicate groups;
3. one binary head per label, cross-validated on folds grouped by near-duplicate groups and
   stratified on the label combination (``training.multilabel``); int8 is guarded on the
   agreement of the label sets;
4. per-label thresholds from the out-of-fold probabilities;
5. the final per-label heads, merged into the backbone graph as one ``probabilities`` [N, L];
6. the parity gate on every label (and the label sets); manifest ``task: multilabel``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from functions.errors import ConfigurationError
from functions.frames.manifest import FEATURE_SIZE, MODEL_FILENAME, Manifest, sha256_file, write_manifest
from training.backbone_features import backbone_features
from training.export_step import export_and_check, tool_versions
from training.finetune import fine_tune_step, tuned_backbone_path
from training.finetune_net import TuneSettings
from training.pipeline import BACKBONE_NAME, PRECISION_CHOICES, TrainResult, default_cache_dir
from training.precision import (
    choose_precision,
    quantization_summary,
)


def train_multilabel(
    source: str,
    out_dir: Path | str,
    *,
    label_sep: str = "_",
    empty_name: str = "none",
    labels_file: str | None = None,
    weights: str = "imagenet",
    folds: int = 5,
    seed: int = 0,
    precision: str = "auto",
    head: str = "lightgbm",
    cache_dir: Path | str | None = None,
    s3_client=None,
    calibration_size: int = 64,
    parity_sample: int = 16,
    params: dict[str, Any] | None = None,
    progress: bool = True,
    console=None,
    fine_tune: TuneSettings | None = None,
    fine_tune_ship: str = "always",
) -> TrainResult:
    """``fine_tune``: as ``training.pipeline.train``, with a sigmoid temporary head; ``if-better``
    compares the cross-fitted macro F1."""
    from rich.console import Console

    from export.backbone import weights_label
    from training.heads import choose_head, cross_validate_heads, fit_head, head_to_onnx
    from training.multilabel import multilabel_guard
    from training.multilabel_data import load_multilabel_dataset
    from training.multilabel_report import (
        add_fine_tuning_to_report,
        print_frozen_vs_tuned,
        print_multilabel_tables,
        write_multilabel_report,
    )
    from training.neardup import DEFAULT_MAX_DISTANCE

    if precision not in PRECISION_CHOICES:
        raise ConfigurationError(f"precision {precision!r}: choose one of {', '.join(PRECISION_CHOICES)}")
    console = console or Console()
    out_dir = Path(out_dir)
    cache_dir = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    cache_dir.mkdir(parents=True, exist_ok=True)
    label_of_weights = weights_label(weights)

    def step(message: str) -> None:
        console.print(f"[bold cyan]›[/] {message}")

    step(f"loading the multi-label training set from {source}")
    dataset = load_multilabel_dataset(
        source,
        label_sep=label_sep,
        empty_name=empty_name,
        labels_file=labels_file,
        min_per_label=folds,
        s3_client=s3_client,
        progress=progress,
    )
    pixels, y, sha256s, labels = dataset.pixels(), dataset.targets(), dataset.sha256s(), dataset.labels
    step(
        f"{len(y)} frames, labels from {dataset.label_source}: "
        + ", ".join(f"{label} {n}" for label, n in dataset.counts().items())
        + f"; {dataset.summary()['empty_set']} with no label; {len(dataset.skipped)} skipped"
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

    task = "multilabel"
    heads_fp32 = cross_validate_heads(
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
    )
    chosen, head_reason = choose_head(head, heads_fp32)
    step(f"head: {chosen}: {head_reason}")
    frozen_cv = heads_fp32[chosen]
    tuning, shipping_tuned = None, False
    if fine_tune is not None:
        from training.heads import fit_per_label
        from training.multilabel import cross_validate_multilabel

        def cross_validate_with(fold_features):
            return cross_validate_multilabel(
                features["fp32"], y, groups.group_ids, labels, seed=seed,
                params=params if chosen == "lightgbm" else None,
                fit=lambda f, t, p, s: fit_per_label(chosen, f, t, p, s), head=chosen,
                fold_of=frozen_cv.fold_of, progress=False, fold_features=fold_features,
            )  # fmt: skip

        tuning, shipping_tuned = fine_tune_step(
            keras_model, pixels, sha256s, y, groups.group_ids, frozen_cv, settings=fine_tune,
            ship=fine_tune_ship, metric="macro_f1", n_outputs=len(labels), multilabel=True,
            cross_validate_with=cross_validate_with, backbone_key=f"{label_of_weights}|seed {seed}",
            cache_dir=cache_dir, progress=progress, console=console, step=step,
        )  # fmt: skip
        if shipping_tuned:
            tuned = (tuning.keras_model, tuned_backbone_path(tuning.keras_model, cache_dir))
            prepared = backbone_features(pixels, sha256s, **featurize_options, tuned=tuned)
            keras_model, backbones, features = prepared.keras_model, prepared.backbones, prepared.features
            featurize_stats = prepared.featurize_stats
    # Fine-tuned: the final network saw every frame, so these CVs only compare fp32 with int8 on it.
    cvs = {
        "fp32": cross_validate_heads(
            chosen, task, features["fp32"], y, groups.group_ids, labels, folds=folds, seed=seed,
            params=params, fold_of=frozen_cv.fold_of, progress=progress,
        )[chosen]
        if shipping_tuned
        else frozen_cv
    }  # fmt: skip
    guard = None
    if "int8" in backbones:
        cvs["int8"] = cross_validate_heads(
            chosen,
            task,
            features["int8"],
            y,
            groups.group_ids,
            labels,
            folds=folds,
            seed=seed,
            params=params,
            fold_of=cvs["fp32"].fold_of,
            progress=progress,
        )[chosen]
        guard = multilabel_guard(cvs["fp32"], cvs["int8"])
        step(f"int8 guard: {'pass' if guard.passed else 'FAIL'}: {guard.reason}")
    shipped, reason = choose_precision(precision, guard)
    step(f"shipping {shipped}: {reason}")
    cv = tuning.cv if shipping_tuned else cvs[shipped]
    thresholds = cv.thresholds

    step(f"fitting the final {chosen} heads on all frames and exporting model.onnx")
    final = fit_head(chosen, task, features[shipped], y, labels, params=params, seed=seed)
    trees = head_to_onnx(chosen, task, final, FEATURE_SIZE, labels)
    with tempfile.TemporaryDirectory(prefix="camsort-train-", dir=cache_dir) as work_dir:
        candidate, parity = export_and_check(
            backbones,
            shipped,
            final,
            trees,
            labels,
            keras_model,
            pixels,
            seed,
            parity_sample,
            Path(work_dir),
            thresholds=thresholds,
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        staged = out_dir / f".{MODEL_FILENAME}.tmp-{os.getpid()}"
        shutil.copyfile(candidate, staged)
        os.replace(staged, out_dir / MODEL_FILENAME)
    step(
        "parity: every label within {:.2g} of the reference; label sets identical on {} frames".format(
            max(f["probabilities_max_abs_diff"] for f in parity.values()), parity["fp32_vs_keras"]["n_images"]
        )
    )

    sha = sha256_file(out_dir / MODEL_FILENAME)
    now = datetime.now(UTC)
    near_duplicates = {
        "groups": groups.n_groups,
        "merged": groups.merged,
        "max_distance": DEFAULT_MAX_DISTANCE,
    }
    manifest = Manifest(
        labels=list(labels),
        task="multilabel",
        thresholds=thresholds,
        backbone=BACKBONE_NAME,
        weights=label_of_weights,
        precision=shipped,
        model_sha256=sha,
        model_version=f"{now:%Y%m%dT%H%M%SZ}-{sha[:8]}",
        created_at=now.isoformat(timespec="seconds").replace("+00:00", "Z"),
        cv_summary={**cv.summary(), "head_choice": head_reason},
        training_set={**dataset.summary(), "near_duplicates": near_duplicates},
        parity=parity,
        quantization=quantization_summary(precision, shipped, reason, guard, calibration_size, len(y))
        | (
            {
                "guard_frames": "heads on the final fine-tuned network, which saw every frame: fp32 vs int8 only"
            }
            if shipping_tuned and guard is not None
            else {}
        ),
        tools=tool_versions(),
        fine_tuning=tuning.record() if tuning is not None else {},
    )
    write_manifest(out_dir, manifest)
    report_paths = write_multilabel_report(
        out_dir,
        cv=cv,
        dataset_summary={
            **dataset.summary(),
            "skipped": [{"uri": s.uri, "reason": s.reason, "detail": s.detail} for s in dataset.skipped],
        },
        neardup=near_duplicates,
        guard=guard,
        parity=parity,
        manifest=manifest,
        heads=heads_fp32,
        head_reason=head_reason,
    )
    if weights == "none":
        console.print(
            "[bold yellow]The backbone is randomly initialised (--weights none): these figures are not "
            "representative of a model built on ImageNet weights.[/]"
        )
    print_multilabel_tables(
        cv,
        console,
        title=f"multi-label cross-validation, {shipped} features, {chosen} head ({cv.folds} grouped folds, seed {seed})",
        heads=heads_fp32 if len(heads_fp32) > 1 else None,
    )
    if tuning is not None:
        add_fine_tuning_to_report(out_dir, frozen_cv, tuning.cv, tuning.decision)
        print_frozen_vs_tuned(
            frozen_cv,
            tuning.cv,
            console,
            title=f"frozen vs fine-tuned ({tuning.settings.from_stage}), the same {len(y)} frames and folds",
        )
        console.print(f"fine-tuning {tuning.decision}")
    step(f"model written to {out_dir} (model.onnx sha256 {sha[:12]}…, report: {report_paths.html})")
    return TrainResult(
        model_dir=out_dir,
        manifest=manifest,
        cv=cv,
        other_cv={name: other for name, other in cvs.items() if name != shipped}
        | ({"frozen": frozen_cv} if shipping_tuned else {}),
        guard=guard,
        precision=shipped,
        precision_reason=reason,
        parity=parity,
        report_paths=report_paths,
        featurize_stats=featurize_stats,
        backbones=dict(backbones),
        fine_tuning=tuning,
    )
