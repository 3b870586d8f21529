"""`camsort train`'s flags -> the task and feature-source strategies, and the refusals, before any work."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from functions.errors import ConfigurationError
from training.fit.finetune_net import TuneSettings
from training.options import IncompatibleOptions, strategies
from training.settings import TrainSettings
from training.sources import ArchiveOptions, Frames, StoredShards
from training.tasks import MultiLabel, RegionCrops, SingleLabel

SHARDS = "s3://frames/features/" + "a" * 64 + "/"
S3 = object()  # stands for a boto3 client: selection only stores it


def test_folders_train_one_label_per_frame_from_the_frames():
    task, source = strategies(["data/", "review/"], TrainSettings())
    assert task == SingleLabel()
    assert source == Frames(["data/", "review/"], None)


def test_multilabel_keeps_its_label_options():
    task, source = strategies(
        ["s3://frames/sets/"],
        TrainSettings(),
        task="multilabel",
        label_sep="+",
        labels_file="l.csv",
        s3_client=S3,
    )
    assert task == MultiLabel(label_sep="+", labels_file="l.csv")
    assert source == Frames(["s3://frames/sets/"], S3)


def test_features_select_the_stored_shards_of_one_s3_training_set():
    task, source = strategies(
        ["s3://frames/training/"], TrainSettings(), features=SHARDS, backbone_from="models/v1", s3_client=S3
    )
    assert task == SingleLabel()
    assert isinstance(source, StoredShards)
    assert (source.training_set, source.features_uri, source.backbone_from, source.s3_client) == (
        "s3://frames/training/",
        SHARDS,
        "models/v1",
        S3,
    )


@pytest.mark.parametrize(
    ("datasets", "settings", "options", "message"),
    [
        (["data/"], TrainSettings(), {"backbone_from": "models/v1"}, "it needs --features"),
        (["data/"], TrainSettings(), {"labels_file": "l.csv"}, "it needs --task multilabel"),
        (["a/", "b/"], TrainSettings(), {"task": "multilabel"}, "trains on one DATASET"),
        (["data/"], TrainSettings(), {"task": "regions"}, "choose one of auto, multilabel"),
        (["s3://f/t/"], TrainSettings(), {"features": SHARDS, "task": "multilabel"}, "not supported"),
        (
            ["s3://f/t/"],
            TrainSettings(precision="int8"),
            {"features": SHARDS},
            "drop --weights / --precision",
        ),
        (["s3://f/t/"], TrainSettings(weights="none"), {"features": SHARDS}, "drop --weights / --precision"),
        (
            ["s3://f/t/"],
            TrainSettings(fine_tune=TuneSettings()),
            {"features": SHARDS},
            "on the frames themselves",
        ),
        (["data/"], TrainSettings(), {"engine": "dask"}, "train from --features"),
        (["data/"], TrainSettings(), {"cameras": ["cam-1"]}, "train from --features"),
    ],
)
def test_incompatible_options_are_refused(datasets, settings, options, message):
    with pytest.raises(IncompatibleOptions, match=message):
        strategies(datasets, settings, s3_client=S3, **options)


def test_the_archive_options_go_to_the_stored_features():
    since = datetime(2026, 11, 1, tzinfo=UTC)
    _, source = strategies(
        ["s3://f/t/"],
        TrainSettings(),
        features=SHARDS,
        s3_client=S3,
        engine="dask",
        cameras=["cam-7"],
        since=since,
    )
    assert isinstance(source, StoredShards)
    assert source.archive == ArchiveOptions(engine="dask", cameras=["cam-7"], since=since)


def test_features_need_one_s3_training_set():
    with pytest.raises(ConfigurationError, match="ONE S3 training set") as refused:
        strategies(["data/"], TrainSettings(), features=SHARDS)
    assert not isinstance(refused.value, IncompatibleOptions)  # a configuration error, not a usage error


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (TrainSettings(precision="int4"), "choose one of auto, fp32, int8"),
        (TrainSettings(folds=1), "at least 2 folds"),
        (
            TrainSettings(fine_tune=TuneSettings(), fine_tune_ship="sometimes"),
            "choose one of always, if-better",
        ),
    ],
)
def test_settings_no_stage_could_honour_are_refused(settings, message):
    with pytest.raises(ConfigurationError, match=message):
        settings.check()


def test_regions_train_a_named_models_crops_from_the_frames():
    task, source = strategies(
        ["lot/"],
        TrainSettings(),
        regions="lot/cameras.json",
        labels_file="lot/labels.jsonl",
        model_name="bay",
    )
    assert task == RegionCrops(regions="lot/cameras.json", labels_file="lot/labels.jsonl", model_name="bay")
    assert source == Frames(["lot/"], None)


@pytest.mark.parametrize(
    ("datasets", "options", "says"),
    [
        (["lot/"], {"model_name": "bay"}, "--model-name trains the regions of a named model: it needs --regions"),
        (["lot/"], {"regions": "c.json"}, "give their labels with --labels-file"),
        (["lot/"], {"regions": "c.json", "labels_file": "l.csv", "task": "multilabel"}, "drop --task multilabel"),
        (["a/", "b/"], {"regions": "c.json", "labels_file": "l.csv"}, "ONE DATASET"),
        (["s3://f/t/"], {"regions": "c.json", "labels_file": "l.csv", "features": SHARDS}, "cannot train from --features"),
    ],
)  # fmt: skip
def test_region_options_that_cannot_go_together(datasets, options, says):
    with pytest.raises(IncompatibleOptions, match=says):
        strategies(datasets, TrainSettings(), s3_client=S3, **options)
