"""The feature source of a head trained on another model's backbone: ``ModelBackbone``.

A named model (a region's ``bay``, ``gate``) can share the backbone the default model ships,
bytes and all: its features are the ``features`` output of that backbone (the ``image ->
features`` subgraph of the default's model.onnx, run with the function's onnxruntime settings
and cached per image like every featurization), its head is fitted and cross-validated as
usual, and model.onnx is that same backbone with the new head merged on. No Keras model is
built, nothing goes through tf2onnx again and nothing is fine-tuned again: what the default
model's training decided (weights, fine-tuning, precision, the int8 guard) holds for the
backbone, and its manifest record is carried over. The export's parity gate is the head half
(the merged graph against the fitted head on its own features), as for stored feature shards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from functions.errors import ConfigurationError
from training.features.backbone import resolve_cache_dir
from training.features.featurize import featurize
from training.features.neardup import dhash_groups
from training.features.shards_backbone import (
    ShardBackbone,
    borrowed_backbone_fields,
    export_on_backbone,
    model_backbone,
)
from training.fit.thresholds import GuardResult
from training.settings import TrainingSet, TrainSettings, loaded_training_set
from training.sources import FittedHead, Step, fit_here, heads_here
from training.tasks import Task


@dataclass
class ModelBackbone:
    """Features of the frames under ``sources`` through the backbone of the model at ``backbone_from``."""

    sources: Sequence[str]
    backbone_from: str  # a model directory or s3://.../models/<version>/
    s3_client: Any = None
    _backbone: ShardBackbone | None = field(default=None, init=False, repr=False)

    def load(self, task: Task, settings: TrainSettings, step: Step) -> TrainingSet:
        if settings.fine_tune is not None:
            raise ConfigurationError(
                f"the backbone of {self.backbone_from} ships as it is: it cannot be fine-tuned again here"
            )
        dataset = task.load(self.sources, s3_client=self.s3_client, settings=settings, step=step)
        backbone = self._backbone = model_backbone(self.backbone_from, s3_client=self.s3_client)
        source = backbone.manifest
        step(
            f"backbone of model {source.model_version} ({source.backbone}, {source.precision}, weights "
            f"{source.weights}), sha256 {backbone.sha256[:12]}…: no conversion, no fine-tuning"
        )
        pixels, sha256s = dataset.pixels(), dataset.sha256s()
        cache_dir = resolve_cache_dir(settings.cache_dir)
        path = cache_dir / "backbones" / f"borrowed-{backbone.sha256[:16]}.onnx"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.part")
            temporary.write_bytes(backbone.model.SerializeToString())
            temporary.replace(path)
        result = featurize(pixels, sha256s, path, cache_dir=cache_dir, progress=settings.progress)
        step(f"{source.precision} features: {result.computed} computed, {result.cache_hits} from the cache")
        return loaded_training_set(
            dataset, pixels, dhash_groups(pixels), {source.precision: result.features}, step=step,
            backbones={source.precision: path}, sources=self.sources,
            featurize_stats={source.precision: {"cache_hits": result.cache_hits, "computed": result.computed}},
            summary={"backbone_from": f"{self.backbone_from} (model {source.model_version})"},
        )  # fmt: skip

    def cross_validate_heads(self, task: Task, data: TrainingSet, settings: TrainSettings, step: Step):
        return heads_here(task, data, settings, step)

    def fit_head(self, task: Task, data: TrainingSet, shipped: str, head: str, settings: TrainSettings):
        return fit_here(task, data, shipped, head, settings)

    def with_tuned_backbone(self, data: TrainingSet, keras_model: Any, settings: TrainSettings, step: Step):
        raise ConfigurationError(f"the backbone of {self.backbone_from} cannot be fine-tuned again here")

    def with_frozen_int8(self, data: TrainingSet, settings: TrainSettings, step: Step):
        return data  # the borrowed backbone's features are already its shipped precision

    def choose_precision(self, settings: TrainSettings, guard: GuardResult | None) -> tuple[str, str]:
        precision = self._loaded().manifest.precision
        return precision, f"the backbone of {self.backbone_from} ({precision})"

    def export(
        self, data: TrainingSet, shipped: str, fitted: FittedHead, out_dir: Path, settings: TrainSettings
    ):
        rng = np.random.default_rng(settings.seed)
        sample = np.sort(
            rng.choice(len(data.y), size=min(settings.parity_sample, len(data.y)), replace=False)
        )
        trees = export_on_backbone(self._loaded(), fitted, out_dir, np.asarray(data.frames)[sample])
        trees["images"] = f"{len(sample)} training crops (seeded sample)"
        return {"trees": trees}

    def manifest_fields(
        self, data, shipped, reason, guard, tuning, settings: TrainSettings
    ) -> dict[str, Any]:
        return borrowed_backbone_fields(self._loaded())

    def describe(self, shipped: str) -> str:
        return f"{shipped} features of {self.backbone_from}'s backbone"

    def caveat(self, settings: TrainSettings) -> str | None:
        if self._loaded().manifest.weights != "none":
            return None
        return (
            "The backbone is randomly initialised (--weights none): these figures are not "
            "representative of a model built on ImageNet weights."
        )

    def _loaded(self) -> ShardBackbone:
        if self._backbone is None:
            raise RuntimeError("ModelBackbone.load() has not run")
        return self._backbone
