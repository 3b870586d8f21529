"""`camsort train DATASET --features s3://.../features/<backbone sha256>/ --backbone-from MODEL`.

A shippable model directory (model.onnx + manifest.json + report.*) from feature shards written by
a featurize backfill, without featurizing locally. The chain, as training/pipeline.py's on local
features:

1. the shard set (training/shards.py): labels from the keys, float16 features, dhash groups;
2. the backbone that wrote them (training/shards_backbone.py): ``--backbone-from``'s manifest must
   record the shards' backbone sha256; its ``image -> features`` subgraph is what ships;
3. the backbone half of the parity gate, before any fitting: a seeded sample of the training
   frames, downloaded and loaded as the function does, through that backbone with the function's
   onnxruntime settings, against the stored float16 features;
4. cross-validation of the head(s) (``--head``) on the shard features, thresholds from the OOF;
5. the final head on every frame, converted and merged into the backbone (export/merge.py);
6. the head half of the gate: the merged model's probabilities vs the fitted head's
   ``predict_proba`` on the model's own features (``check_tree_parity``: 1e-4, labels identical);
7. manifest.json (precision, weights and backbone of the source model; backbone_sha256 the
   shards'; ``training_set.features_from = "shards"``) and the report (training/report.py).

Any failure, the parity gate's ``ParityError`` included, leaves ``out_dir`` untouched: everything
is written into a temporary directory beside it and moved in at the end.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from functions.errors import ConfigurationError
from functions.frames.manifest import FEATURE_SIZE, MODEL_FILENAME, Manifest, sha256_file, write_manifest


class _FramesOnDemand:
    """``pixels[i]`` for the report's worst-frame thumbnails: downloads frame i when asked (a
    dozen frames at most), instead of every training frame. A frame gone since is drawn black."""

    def __init__(self, uris: list[str], s3_client: Any):
        self._uris, self._s3 = uris, s3_client

    def __getitem__(self, i: int) -> np.ndarray:
        from training.shards import download_frames

        loaded = download_frames([self._uris[i]], s3_client=self._s3, max_workers=1)
        if self._uris[i] not in loaded:
            return np.zeros((224, 224, 3), dtype=np.uint8)
        return loaded[self._uris[i]][1]


def train_from_shards(
    source: str,
    features_uri: str,
    out_dir: Path | str,
    *,
    s3_client: Any,
    backbone_from: str | None,
    folds: int = 5,
    seed: int = 0,
    head: str = "lightgbm",
    parity_sample: int = 16,
    params: dict[str, Any] | None = None,
    target_precision: float | None = None,
    progress: bool = True,
    console=None,
    engine: str = "local",
    scheduler: str | None = None,
    cameras: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
):
    """Train and export a model from the feature shards of ``source`` into ``out_dir``."""
    import onnx
    from rich.console import Console

    from export.merge import merge_backbone_and_trees
    from export.parity import check_tree_parity
    from training.archive.parquet_features import is_parquet_features, load_parquet_features
    from training.crossval import CVResult
    from training.export_step import tool_versions
    from training.heads import choose_head, cross_validate_heads, fit_head, head_to_onnx
    from training.neardup import DEFAULT_MAX_DISTANCE, groups_of_hashes
    from training.pipeline import TrainResult
    from training.report import ReportPaths, print_cv_table, select_worst_frames, write_report
    from training.shards import load_feature_shards
    from training.shards_backbone import check_backbone, open_backbone
    from training.shards_backbone import parity_sample as draw_sample
    from training.thresholds import DEFAULT_TARGET_PRECISION

    if folds < 2:
        raise ConfigurationError(f"folds={folds}: cross-validation needs at least 2 folds")
    if engine == "dask" and head != "lightgbm":
        raise ConfigurationError(
            f"--engine dask trains the LightGBM head: --head {head} runs on the local engine"
        )
    console = console or Console()
    target_precision = DEFAULT_TARGET_PRECISION if target_precision is None else target_precision
    out_dir = Path(out_dir)

    def step(message: str) -> None:
        console.print(f"[bold cyan]›[/] {message}")

    if is_parquet_features(features_uri):
        step(f"reading the Parquet feature archive of {source} from {features_uri}")
        shards = load_parquet_features(
            source,
            features_uri,
            s3_client=s3_client,
            cameras=cameras,
            since=since,
            until=until,
            min_per_label=folds,
        )
    elif cameras or since or until:
        raise ConfigurationError(
            f"{features_uri}: --camera/--since/--until filter the Parquet archive (s3://<bucket>/archive/features/"
            "<backbone sha256>/, written by `camsort compact`), not per-frame shards"
        )
    else:
        step(f"reading the feature shards of {source} from {features_uri}")
        shards = load_feature_shards(source, features_uri, s3_client=s3_client, min_per_label=folds)
    groups = groups_of_hashes(shards.hashes)
    counts = {label: int((shards.y == i).sum()) for i, label in enumerate(shards.labels)}
    step(
        f"{len(shards.y)} featurized frames ({', '.join(f'{label} {n}' for label, n in counts.items())}), "
        f"{len(shards.missing)} without features, {groups.n_groups} near-duplicate groups"
    )

    backbone = open_backbone(backbone_from, shards, s3_client=s3_client)
    step(
        f"backbone: {backbone.manifest.backbone} ({backbone.manifest.precision}, weights "
        f"{backbone.manifest.weights}) of model {backbone.manifest.model_version}, sha256 {backbone.sha256[:12]}…"
    )
    sample = draw_sample(shards, s3_client=s3_client, size=parity_sample, seed=seed + 1)
    parity: dict[str, Any] = {"backbone_vs_shards": check_backbone(backbone, shards, sample)}
    step(
        f"parity: backbone features vs the shards on {len(sample.indices)} frames: max |diff| "
        f"{parity['backbone_vs_shards']['features_max_abs_diff']:.2g}"
    )

    features = shards.features
    task = "binary" if len(shards.labels) == 2 else "multiclass"
    if engine == "dask":
        from training.archive.dask_engine import train_head_on_dask

        step(f"cross-validating the lightgbm head on Dask ({scheduler or 'a LocalCluster'}, {folds} folds)")
        dask_cv, classifier = train_head_on_dask(
            features, shards.y, groups.group_ids, shards.labels, folds=folds, seed=seed, params=params,
            target_precision=target_precision, scheduler=scheduler, progress=progress,
        )  # fmt: skip
        heads = {"lightgbm": dask_cv}
    else:
        step(f"cross-validating the {head} head(s) on the shard features ({folds} folds)")
        heads = cross_validate_heads(
            head,
            task,
            features,
            shards.y,
            groups.group_ids,
            shards.labels,
            folds=folds,
            seed=seed,
            params=params,
            progress=progress,
            target_precision=target_precision,
        )
    head, head_reason = choose_head(head, heads)
    cv: CVResult = heads[head]
    step(f"head: {head}: {head_reason}")

    step(f"fitting the final {head} head on all frames and exporting model.onnx")
    if engine != "dask":
        classifier = fit_head(head, task, features, shards.y, shards.labels, params=params, seed=seed)
    trees = head_to_onnx(head, task, classifier, FEATURE_SIZE, list(shards.labels))
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.", dir=out_dir.parent) as work_dir:
        staged = Path(work_dir)
        onnx.save(merge_backbone_and_trees(backbone.model, trees), str(staged / MODEL_FILENAME))
        parity["trees"] = check_tree_parity(staged / MODEL_FILENAME, classifier, sample.pixels)
        parity["trees"]["images"] = parity["backbone_vs_shards"]["images"]
        step(
            "parity: probabilities max |diff| {:.2g}, labels identical".format(
                parity["trees"]["probabilities_max_abs_diff"]
            )
        )

        sha = sha256_file(staged / MODEL_FILENAME)
        now = datetime.now(UTC)
        neardup = {"groups": groups.n_groups, "merged": groups.merged, "max_distance": DEFAULT_MAX_DISTANCE}
        training_set = {
            "source": source,
            "labels": list(shards.labels),
            "per_label": counts,
            "total": len(shards.y),
            "features_from": "parquet" if is_parquet_features(features_uri) else "shards",
            "engine": cv.extra.get("engine", "local"),
            "features": features_uri,
            "features_written_by": shards.model_versions,
            "without_features": len(shards.missing),
            "near_duplicates": neardup,
        }
        source_manifest = backbone.manifest
        manifest = Manifest(
            labels=list(shards.labels),
            task=task,
            thresholds=cv.thresholds.as_dict(),
            backbone=source_manifest.backbone,
            weights=source_manifest.weights,
            precision=source_manifest.precision,
            model_sha256=sha,
            model_version=f"{now:%Y%m%dT%H%M%SZ}-{sha[:8]}",
            backbone_sha256=shards.backbone_sha256,
            created_at=now.isoformat(timespec="seconds").replace("+00:00", "Z"),
            cv_summary={**cv.summary(), "head": head, "head_choice": head_reason},
            training_set=training_set,
            parity=parity,
            # The backbone is the source model's, bytes and all: so is its quantization record and
            # the int8 kernel family its guard ran on.
            quantization={
                **source_manifest.quantization,
                "backbone_from": f"{backbone.source} (model {source_manifest.model_version})",
            },
            tools=tool_versions(),
            int8_kernels=source_manifest.int8_kernels,
        )
        write_manifest(staged, manifest)
        report_paths = write_report(
            staged,
            cv=cv,
            dataset_summary={**training_set, "without_features_examples": shards.missing[:20]},
            neardup=neardup,
            thresholds=cv.thresholds,
            guard=None,
            parity=parity,
            manifest=manifest,
            worst_frames=select_worst_frames(cv, shards.uris, _FramesOnDemand(shards.uris, s3_client)),
        )
        if len(heads) > 1:
            from training.multilabel_report import add_heads_to_report

            add_heads_to_report(staged, heads, head_reason)
        _move_into(staged, out_dir)
    report_paths = ReportPaths(
        **{f.name: out_dir / getattr(report_paths, f.name).name for f in fields(report_paths)}
    )

    print_cv_table(
        cv,
        console,
        title=f"cross-validation on feature shards, {head} head ({folds} grouped folds, seed {seed})",
    )
    if len(heads) > 1:
        from training.multilabel_report import print_heads_table

        print_heads_table(heads, console)
    step(
        f"model written to {out_dir} (model.onnx sha256 {sha[:12]}…, report: {out_dir / report_paths.html.name})"
    )
    return TrainResult(
        model_dir=out_dir,
        manifest=manifest,
        cv=cv,
        other_cv={},
        guard=None,
        precision=manifest.precision,
        precision_reason=f"the backbone of {backbone.source} ({manifest.precision})",
        parity=parity,
        report_paths=report_paths,
        featurize_stats={},
        backbones={},
    )


def _move_into(staged: Path, out_dir: Path) -> None:
    """Every file of ``staged`` into ``out_dir`` (each replaced atomically), model.onnx last but
    one and manifest.json last: a reader never sees a manifest describing another model.onnx."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in staged.iterdir())
    order = [n for n in names if n not in (MODEL_FILENAME, "manifest.json")] + [
        MODEL_FILENAME,
        "manifest.json",
    ]
    for name in order:
        os.replace(staged / name, out_dir / name)
