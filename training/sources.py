"""The feature-source strategies of `camsort train`: features from the frames, or stored shards.

``Frames``: the frames of a folder or s3:// prefix (or several), loaded by the function's own
loader and featurized here through the backbone that will ship (fp32, and int8 unless fp32 is
asked for); the only source a fine-tuning can re-featurize, and the one with a Keras reference
for the parity gate.

``StoredShards``: the float16 features a featurize backfill stored (training.features.shards),
with the backbone of the model that wrote them (``--backbone-from``), which is what ships. That
backbone is proved against the shards on a seeded sample of frames before anything is fitted;
precision, weights and the quantization record are the source model's.

A source loads the training set (``load``), decides the shipped precision, writes model.onnx
with its parity gate (``export``) and says what the manifest records of the backbone.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from functions.cpu import int8_kernel_family
from functions.errors import ConfigurationError
from functions.frames.manifest import MODEL_FILENAME, sha256_file
from training.export_step import export_and_check
from training.features.backbone import BACKBONE_NAME, backbone_features, keras_network, resolve_cache_dir
from training.features.neardup import DEFAULT_MAX_DISTANCE, groups_of_hashes
from training.features.parquet_features import is_parquet_features, load_parquet_features
from training.features.precision import choose_precision, quantization_summary
from training.features.shards import ShardSet, download_frames, load_feature_shards
from training.features.shards_backbone import (
    ShardBackbone,
    borrowed_backbone_fields,
    check_backbone,
    export_on_backbone,
    open_backbone,
    parity_sample,
)
from training.fit.heads import fit_head
from training.fit.thresholds import GuardResult
from training.settings import TrainingSet, TrainSettings, loaded_training_set
from training.tasks import Task

Step = Callable[[str], None]


class FeatureSource(Protocol):
    """Where a training run's features come from: ``Frames`` or ``StoredShards``."""

    def load(self, task: Task, settings: TrainSettings, step: Step) -> TrainingSet: ...

    def cross_validate_heads(self, task: Task, data: TrainingSet, settings: TrainSettings, step: Step): ...

    def fit_head(self, task: Task, data: TrainingSet, shipped: str, head: str, settings: TrainSettings): ...

    def with_tuned_backbone(
        self, data: TrainingSet, keras_model: Any, settings: TrainSettings, step: Step
    ): ...

    def with_frozen_int8(self, data: TrainingSet, settings: TrainSettings, step: Step): ...

    def choose_precision(self, settings: TrainSettings, guard: GuardResult | None) -> tuple[str, str]: ...

    def export(
        self, data: TrainingSet, shipped: str, fitted: Any, out_dir: Path, settings: TrainSettings
    ): ...

    def manifest_fields(
        self, data, shipped, reason, guard, tuning, settings: TrainSettings
    ) -> dict[str, Any]: ...

    def describe(self, shipped: str) -> str: ...

    def caveat(self, settings: TrainSettings) -> str | None: ...


@dataclass(frozen=True)
class FittedHead:
    """The final head on every frame, its ONNX graph, and the thresholds the parity gate applies."""

    classifier: Any
    trees: Any  # onnx.ModelProto: features -> probabilities
    parity_thresholds: dict[str, float] | None  # label sets: every label's decision is checked


@dataclass(frozen=True)
class Frames:
    """Features computed here from the frames under ``sources`` (folders or s3:// prefixes)."""

    sources: Sequence[str]
    s3_client: Any = None

    def load(self, task: Task, settings: TrainSettings, step: Step) -> TrainingSet:
        from export.backbone import weights_label

        weights_label(settings.weights)  # validates an .h5 path before any heavy work
        dataset = task.load(self.sources, s3_client=self.s3_client, settings=settings, step=step)
        pixels, sha256s = dataset.pixels(), dataset.sha256s()
        # With --fine-tune the frozen backbone's int8 is needed only when the fine-tuned network does
        # not ship (with_frozen_int8): its calibration and featurization wait until then.
        options = _featurize_options(settings, step)
        if settings.fine_tune is not None:
            options["precision"] = "fp32"
        prepared = backbone_features(pixels, sha256s, **options)
        return loaded_training_set(
            dataset, pixels, prepared.groups, prepared.features, step=step, backbones=prepared.backbones,
            featurize_stats=prepared.featurize_stats, sources=self.sources, keras_model=prepared.keras_model,
        )  # fmt: skip

    def cross_validate_heads(self, task: Task, data: TrainingSet, settings: TrainSettings, step: Step):
        return heads_here(task, data, settings, step)

    def fit_head(self, task: Task, data: TrainingSet, shipped: str, head: str, settings: TrainSettings):
        return fit_here(task, data, shipped, head, settings)

    def with_tuned_backbone(self, data: TrainingSet, keras_model: Any, settings: TrainSettings, step: Step):
        """The training set featurized again through the fine-tuned network (which ships)."""
        from training.fit.finetune import tuned_backbone_path

        cache_dir = resolve_cache_dir(settings.cache_dir)
        tuned = (keras_model, tuned_backbone_path(keras_model, cache_dir), data.backbones["fp32"])
        prepared = backbone_features(
            data.frames, data.sha256s, **_featurize_options(settings, step), tuned=tuned
        )
        return replace(
            data, keras_model=prepared.keras_model, backbones=prepared.backbones, features=prepared.features,
            featurize_stats=prepared.featurize_stats,
        )  # fmt: skip

    def with_frozen_int8(self, data: TrainingSet, settings: TrainSettings, step: Step):
        """The frozen backbone's int8 features, left out by ``load`` when fine-tuning was asked for."""
        if settings.precision == "fp32" or "int8" in data.features:
            return data
        prepared = backbone_features(data.frames, data.sha256s, **_featurize_options(settings, step))
        return replace(
            data,
            backbones=prepared.backbones,
            features=prepared.features,
            featurize_stats=prepared.featurize_stats,
        )

    def choose_precision(self, settings: TrainSettings, guard: GuardResult | None) -> tuple[str, str]:
        return choose_precision(settings.precision, guard)

    def export(
        self, data: TrainingSet, shipped: str, fitted: FittedHead, out_dir: Path, settings: TrainSettings
    ):
        """model.onnx into ``out_dir``, after the parity gate (raises ``ParityError``)."""
        with tempfile.TemporaryDirectory(
            prefix="camsort-train-", dir=resolve_cache_dir(settings.cache_dir)
        ) as work:
            candidate, parity = export_and_check(
                data.backbones, shipped, fitted.classifier, fitted.trees, data.labels,
                keras_network(data.keras_model, settings.weights, settings.seed),
                data.frames, settings.seed, settings.parity_sample, Path(work), thresholds=fitted.parity_thresholds,
            )  # fmt: skip
            shutil.copyfile(candidate, out_dir / MODEL_FILENAME)
        return parity

    def manifest_fields(
        self, data, shipped, reason, guard, tuning, settings: TrainSettings
    ) -> dict[str, Any]:
        from export.backbone import weights_label

        quantization = quantization_summary(
            settings.precision, shipped, reason, guard, settings.calibration_size, len(data.y)
        )
        return {
            "backbone": BACKBONE_NAME,
            "weights": weights_label(settings.weights),
            "precision": shipped,
            "backbone_sha256": sha256_file(data.backbones[shipped]),
            "quantization": quantization,
            "int8_kernels": int8_kernel_family() if guard is not None else "",
            "fine_tuning": tuning.record() if tuning is not None else {},
        }

    def describe(self, shipped: str) -> str:
        return f"{shipped} features"

    def caveat(self, settings: TrainSettings) -> str | None:
        if settings.weights != "none":
            return None
        return (
            "The backbone is randomly initialised (--weights none): these figures are not "
            "representative of a model built on ImageNet weights."
        )


def _featurize_options(settings: TrainSettings, step: Step) -> dict[str, Any]:
    """The same options featurize the frozen backbone and, after fine-tuning, the tuned one."""
    from export.backbone import weights_label

    return {
        "weights": settings.weights,
        "weights_label": weights_label(settings.weights),
        "seed": settings.seed,
        "precision": settings.precision,
        "calibration_size": settings.calibration_size,
        "cache_dir": resolve_cache_dir(settings.cache_dir),
        "progress": settings.progress,
        "step": step,
    }


def heads_here(task: Task, data: TrainingSet, settings: TrainSettings, step: Step) -> dict[str, Any]:
    """Every requested head cross-validated in this process, on the reference features."""
    step(
        f"cross-validating the {settings.head} head(s) on {data.reference} features ({settings.folds} folds)"
    )
    return task.cross_validate_heads(settings.head, data.features[data.reference], data, settings)


def fit_here(task: Task, data: TrainingSet, shipped: str, head: str, settings: TrainSettings):
    """The head fitted in this process on every frame's ``shipped`` features."""
    features, kind = data.features[shipped], task.kind(data.labels)
    return fit_head(head, kind, features, data.y, data.labels, params=settings.params, seed=settings.seed)


@dataclass(frozen=True)
class ArchiveOptions:
    """Stored features only: where the LightGBM head trains, and which archived frames count."""

    engine: str = "local"  # local | dask (lightgbm.dask, the same grouped folds)
    scheduler: str | None = None  # a Dask scheduler address; None: a LocalCluster
    cameras: list[str] = field(default_factory=list)  # the Parquet archive: only these cameras
    since: datetime | None = None  # the Parquet archive: frames captured at or after
    until: datetime | None = None  # the Parquet archive: frames captured before


@dataclass
class StoredShards:
    """Features a featurize backfill stored for the frames under ``training_set`` (one s3:// prefix).

    One instance per training run: ``load`` keeps the source model's backbone and the parity
    sample for ``export``.
    """

    training_set: str
    features_uri: str
    backbone_from: str | None
    s3_client: Any
    archive: ArchiveOptions = field(default_factory=ArchiveOptions)
    _backbone: ShardBackbone | None = field(default=None, init=False, repr=False)
    _dask_head: Any = field(default=None, init=False, repr=False)
    _parity_frames: np.ndarray | None = field(default=None, init=False, repr=False)

    def load(self, task: Task, settings: TrainSettings, step: Step) -> TrainingSet:
        if task.multilabel:
            raise ConfigurationError(
                "--features trains one label per frame: --task multilabel is not supported"
            )
        if settings.fine_tune is not None:
            raise ConfigurationError(
                "--fine-tune trains the network on the frames themselves: it cannot run with --features"
            )
        if self.archive.engine == "dask" and settings.head != "lightgbm":
            raise ConfigurationError(
                f"--engine dask trains the LightGBM head: --head {settings.head} runs on the local engine"
            )
        shards = self._read(settings, step)
        groups = groups_of_hashes(shards.hashes)
        counts = {label: int((shards.y == i).sum()) for i, label in enumerate(shards.labels)}
        step(
            f"{len(shards.y)} featurized frames ({', '.join(f'{label} {n}' for label, n in counts.items())}), "
            f"{len(shards.missing)} without features, {groups.n_groups} near-duplicate groups"
        )
        backbone = self._backbone = open_backbone(self.backbone_from, shards, s3_client=self.s3_client)
        source = backbone.manifest
        step(
            f"backbone: {source.backbone} ({source.precision}, weights {source.weights}) of model "
            f"{source.model_version}, sha256 {backbone.sha256[:12]}…"
        )
        sample = parity_sample(
            shards, s3_client=self.s3_client, size=settings.parity_sample, seed=settings.seed + 1
        )
        self._parity_frames = sample.pixels
        checked = check_backbone(backbone, shards, sample)
        step(
            f"parity: backbone features vs the shards on {len(sample.indices)} frames: max |diff| "
            f"{checked['features_max_abs_diff']:.2g}"
        )
        summary = {
            "source": self.training_set, "labels": list(shards.labels), "per_label": counts,
            "total": len(shards.y), "features_from": "parquet" if is_parquet_features(self.features_uri) else "shards",
            "engine": "local", "features": self.features_uri,
            "features_written_by": shards.model_versions, "without_features": len(shards.missing),
            "near_duplicates": {"groups": groups.n_groups, "merged": groups.merged, "max_distance": DEFAULT_MAX_DISTANCE},
        }  # fmt: skip
        return TrainingSet(
            labels=shards.labels, y=shards.y, groups=groups, uris=shards.uris, sha256s=shards.sha256s,
            frames=FramesOnDemand(shards.uris, self.s3_client), features={source.precision: shards.features},
            summary=summary, report_summary={**summary, "without_features_examples": shards.missing[:20]},
            parity={"backbone_vs_shards": checked},
        )  # fmt: skip

    def _read(self, settings: TrainSettings, step: Step) -> ShardSet:
        """Per-frame shards, or the Parquet archive ``camsort compact`` writes (with its filters)."""
        archive = self.archive
        if is_parquet_features(self.features_uri):
            step(f"reading the Parquet feature archive of {self.training_set} from {self.features_uri}")
            return load_parquet_features(
                self.training_set, self.features_uri, s3_client=self.s3_client, cameras=archive.cameras or None,
                since=archive.since, until=archive.until, min_per_label=settings.folds,
            )  # fmt: skip
        if archive.cameras or archive.since or archive.until:
            raise ConfigurationError(
                f"{self.features_uri}: --camera/--since/--until filter the Parquet archive (s3://<bucket>/archive/"
                "features/<backbone sha256>/, written by `camsort compact`), not per-frame shards"
            )
        step(f"reading the feature shards of {self.training_set} from {self.features_uri}")
        return load_feature_shards(
            self.training_set, self.features_uri, s3_client=self.s3_client, min_per_label=settings.folds
        )

    def cross_validate_heads(self, task: Task, data: TrainingSet, settings: TrainSettings, step: Step):
        """``--engine dask``: the LightGBM head's CV and final fit on a Dask cluster (same folds)."""
        if self.archive.engine != "dask":
            return heads_here(task, data, settings, step)
        from training.fit.dask_engine import train_head_on_dask
        from training.fit.thresholds import DEFAULT_TARGET_PRECISION

        scheduler = self.archive.scheduler
        step(
            f"cross-validating the lightgbm head on Dask ({scheduler or 'a LocalCluster'}, {settings.folds} folds)"
        )
        target = DEFAULT_TARGET_PRECISION if settings.target_precision is None else settings.target_precision
        cv, self._dask_head = train_head_on_dask(
            data.features[data.reference], data.y, data.groups.group_ids, data.labels, folds=settings.folds,
            seed=settings.seed, params=settings.params, target_precision=target, scheduler=scheduler,
            progress=settings.progress,
        )  # fmt: skip
        data.summary["engine"] = data.report_summary["engine"] = cv.extra.get("engine", "local")
        return {"lightgbm": cv}

    def fit_head(self, task: Task, data: TrainingSet, shipped: str, head: str, settings: TrainSettings):
        return (
            self._dask_head
            if self.archive.engine == "dask"
            else fit_here(task, data, shipped, head, settings)
        )

    def with_frozen_int8(self, data: TrainingSet, settings: TrainSettings, step: Step):
        return data  # the stored features are the source model's precision

    def with_tuned_backbone(self, data: TrainingSet, keras_model: Any, settings: TrainSettings, step: Step):
        raise ConfigurationError(
            "stored feature shards cannot be featurized again through a fine-tuned network"
        )

    def choose_precision(self, settings: TrainSettings, guard: GuardResult | None) -> tuple[str, str]:
        precision = self._loaded().manifest.precision
        return precision, f"the backbone of {self._loaded().source} ({precision})"

    def export(
        self, data: TrainingSet, shipped: str, fitted: FittedHead, out_dir: Path, settings: TrainSettings
    ):
        """The source model's backbone with the new head, and the head half of the parity gate."""
        assert self._parity_frames is not None
        trees = export_on_backbone(self._loaded(), fitted, out_dir, self._parity_frames)
        trees["images"] = data.parity["backbone_vs_shards"]["images"]
        return {"trees": trees}

    def manifest_fields(
        self, data, shipped, reason, guard, tuning, settings: TrainSettings
    ) -> dict[str, Any]:
        return borrowed_backbone_fields(self._loaded())

    def describe(self, shipped: str) -> str:
        return "feature shards"

    def caveat(self, settings: TrainSettings) -> str | None:
        return None

    def _loaded(self) -> ShardBackbone:
        if self._backbone is None:
            raise RuntimeError("StoredShards.load() has not run")
        return self._backbone


class FramesOnDemand:
    """``frames[i]`` for the report's worst-frame thumbnails: downloads frame i when asked (a
    dozen frames at most), instead of every training frame. A frame gone since is drawn black."""

    def __init__(self, uris: list[str], s3_client: Any):
        self._uris, self._s3 = uris, s3_client

    def __getitem__(self, i: int) -> np.ndarray:
        loaded = download_frames([self._uris[i]], s3_client=self._s3, max_workers=1)
        if self._uris[i] not in loaded:
            return np.zeros((224, 224, 3), dtype=np.uint8)
        return loaded[self._uris[i]][1]
