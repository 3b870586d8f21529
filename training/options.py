"""From `camsort train`'s options to the strategies ``training.pipeline.train`` runs with.

``strategies`` picks the task (``--task``) and the feature source (``--features``), and refuses the
combinations no strategy can honour with ``IncompatibleOptions`` (the CLI shows it as a usage
error), before any work. ``train_with_options`` is the whole command.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from functions.errors import ConfigurationError
from training.data.dataset import DEFAULT_LABEL_SEP
from training.pipeline import TrainResult, train
from training.settings import TrainSettings
from training.sources import ArchiveOptions, FeatureSource, Frames, StoredShards
from training.tasks import MultiLabel, RegionCrops, SingleLabel, Task

TASK_CHOICES = ("auto", "multilabel")


class IncompatibleOptions(ConfigurationError):
    """Options that cannot go together: one sentence naming them and what to drop."""


def strategies(
    datasets: Sequence[str],
    settings: TrainSettings,
    *,
    task: str = "auto",
    label_sep: str = DEFAULT_LABEL_SEP,
    labels_file: str | None = None,
    features: str | None = None,
    backbone_from: str | None = None,
    s3_client: Any = None,
    engine: str = "local",
    scheduler: str | None = None,
    cameras: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    regions: str | None = None,
    model_name: str | None = None,
) -> tuple[Task, FeatureSource]:
    """The task and the feature source for these options (``task``: auto | multilabel; ``engine``,
    ``scheduler``, ``cameras``, ``since``, ``until``: stored features only)."""
    if task not in TASK_CHOICES:
        raise IncompatibleOptions(f"--task {task!r}: choose one of {', '.join(TASK_CHOICES)}")
    archive = ArchiveOptions(engine, scheduler, list(cameras), since, until)
    if features and (regions or model_name):
        raise IncompatibleOptions("--regions cuts crops from the frames: it cannot train from --features")
    if features:
        return SingleLabel(), _stored_shards(
            datasets, settings, task, features, backbone_from, s3_client, archive
        )
    if archive != ArchiveOptions():
        raise IncompatibleOptions(
            "--engine, --scheduler, --camera, --since and --until train from --features"
        )
    if backbone_from:
        raise IncompatibleOptions(
            "--backbone-from names the model that wrote --features' shards: it needs --features"
        )
    if regions or model_name:
        return _region_crops(datasets, task, regions, labels_file, model_name), Frames(
            list(datasets), s3_client
        )
    if task == "multilabel":
        if len(datasets) != 1:
            raise IncompatibleOptions(
                "--task multilabel trains on one DATASET (a folder or s3://bucket/prefix/)"
            )
        return MultiLabel(label_sep=label_sep, labels_file=labels_file), Frames(list(datasets), s3_client)
    if labels_file:
        raise IncompatibleOptions("--labels-file lists label sets: it needs --task multilabel")
    return SingleLabel(), Frames(list(datasets), s3_client)


def _region_crops(
    datasets: Sequence[str], task: str, regions: str | None, labels_file: str | None, model_name: str | None
) -> RegionCrops:
    if not regions:
        raise IncompatibleOptions("--model-name trains the regions of a named model: it needs --regions")
    if not labels_file:
        raise IncompatibleOptions(
            "--regions cuts labelled regions: give their labels with --labels-file (key,region,label); "
            "crops already sorted into label folders train without --regions"
        )
    if task == "multilabel":
        raise IncompatibleOptions("--regions trains one label per region: drop --task multilabel")
    if len(datasets) != 1:
        raise IncompatibleOptions("--regions: the labels file names frames under ONE DATASET")
    return RegionCrops(regions=regions, labels_file=labels_file, model_name=model_name)


def _stored_shards(
    datasets: Sequence[str],
    settings: TrainSettings,
    task: str,
    features: str,
    backbone_from: str | None,
    s3_client: Any,
    archive: ArchiveOptions,
) -> StoredShards:
    if settings.fine_tune is not None:
        raise IncompatibleOptions(
            "--fine-tune trains the network on the frames themselves: it cannot run with --features "
            "(only the frames' features are stored)"
        )
    if s3_client is None or len(datasets) != 1:
        raise ConfigurationError(
            f"{' '.join(datasets)}: --features trains on the shards of ONE S3 training set: "
            "give one s3://bucket/prefix/"
        )
    if task == "multilabel":
        raise IncompatibleOptions("--features trains one label per frame: --task multilabel is not supported")
    if settings.precision != "auto" or settings.weights != "imagenet":
        raise IncompatibleOptions(
            "--features ships the backbone of --backbone-from (its weights and precision): "
            "drop --weights / --precision"
        )
    return StoredShards(datasets[0], features, backbone_from, s3_client, archive)


def train_with_options(
    datasets: Sequence[str],
    out_dir: Path,
    settings: TrainSettings,
    *,
    endpoint_url: str | None = None,
    console=None,
    **options: Any,
) -> TrainResult:
    """`camsort train`: an S3 client when a DATASET or the labels file is on S3, the strategies
    for ``options`` (those of ``strategies``), then the pipeline."""
    s3_client = None
    # --endpoint-url also serves a local labels file whose frames are on S3 (a sampled bucket)
    files = [options.get("labels_file") or "", options.get("regions") or ""]
    if endpoint_url or any(source.startswith("s3://") for source in [*datasets, *files]):
        import boto3

        s3_client = boto3.client("s3", endpoint_url=endpoint_url)
    task, source = strategies(datasets, settings, s3_client=s3_client, **options)
    return train(task, source, out_dir, settings, console=console)
