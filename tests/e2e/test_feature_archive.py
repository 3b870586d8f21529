"""The feature archive on the local system: a featurize backfill's shards compacted into Parquet
(partitioned by camera and day, incremental, idempotent), and training from the Parquet dataset
yields exactly the arrays and the cross-validation figures of training from the shards."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
import onnx
import pytest
from PIL import Image

from functions import wiring
from functions.archive.compaction import FeatureArchive
from functions.compact_handler import compact_bucket
from functions.frames.manifest import FEATURE_SIZE
from functions.handler import handle
from functions.observability import metrics
from functions.settings import Settings
from functions.stores.results import ResultsTable
from infra.ops.archive_jobs import compact_locally
from infra.ops.backfill import BackfillRequest, run_backfill_locally
from training.features.neardup import groups_of_hashes
from training.features.parquet_features import (
    archive_filter,
    arrow_s3,
    feature_dataset,
    load_parquet_features,
)
from training.features.shards import load_feature_shards
from training.fit.crossval import cross_validate
from training.pipeline import SingleLabel, StoredShards, TrainSettings, train
from training.sources import ArchiveOptions

BASE = {"bus": (200, 40, 40), "car": (40, 200, 40), "empty": (40, 40, 200)}
PER_LABEL = 5
FOLDS = 3


def png(label: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(BASE[label]) + rng.integers(-40, 40, (96, 128, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def featurize(aws, aws_env, tiny_model, tmp_path):
    settings = Settings(model_uri="unused", results_table=aws.table, model_cache_dir=str(tmp_path / "m"))
    app = wiring.build_app(settings, s3_client=aws.s3, dynamodb_client=aws.dynamodb, model=tiny_model)
    table = ResultsTable(aws.table, aws.dynamodb)

    def run(source: str):
        request = BackfillRequest(source=f"s3://{aws.bucket}/{source}", mode="featurize", per_frame_ms=88.0)
        return run_backfill_locally(
            request, s3=aws.s3, table=table, invoke=lambda e: handle(e, lambda: app), retry_pause_s=0
        )

    yield run
    # handle() outside lambda_handler leaves its EMF metrics in Powertools' process-wide buffer,
    # which the next lambda_handler call (another test's) would flush as its own.
    metrics.clear_metrics()


def parts(aws) -> dict[str, str]:
    listing = aws.s3.list_objects_v2(Bucket=aws.bucket, Prefix="archive/features/").get("Contents", [])
    return {o["Key"]: o["ETag"] for o in listing}


def test_compaction_packs_incrementally_and_training_reads_the_same_arrays(
    aws, featurize, tiny_model, tiny_model_dir, moto_server, tmp_path
):
    for label in BASE:
        for i in range(PER_LABEL):
            aws.s3.put_object(
                Bucket=aws.bucket, Key=f"training/{label}/{i:02d}.png", Body=png(label, 10 * len(label) + i)
            )
    # Archive frames: camera from the key pattern, capture time from the key.
    stamps = (
        ("cam-a", "20261201T080000000Z"),
        ("cam-a", "20261202T090000000Z"),
        ("cam-b", "20261202T100000000Z"),
    )
    for i, (camera, stamp) in enumerate(stamps):
        aws.s3.put_object(Bucket=aws.bucket, Key=f"frames/{camera}/{stamp}.png", Body=png("bus", 500 + i))
    assert featurize("training/").failed == 0 and featurize("frames/").failed == 0
    backbone = tiny_model.manifest.backbone_sha256
    archive = FeatureArchive(aws.s3)

    # Under the compact function's role, derived from its calls, with moto enforcing it.
    moto_server.enforce_iam()
    # Runs cut short (at most 8 pointers each) resume after their last pointer: nothing twice, nothing lost.
    runs = [
        compact_locally(aws.endpoint_url, aws.bucket, max_pointers=8)["backbones"][backbone] for _ in range(3)
    ]
    assert [(r["packed"], r["remaining"], r["skipped"]) for r in runs] == [
        (8, 10, []),
        (8, 2, []),
        (2, 0, []),
    ]
    root = f"archive/features/{backbone}/"
    written = parts(aws)
    folders = sorted({k[len(root) :].rsplit("/", 1)[0] for k in written if k.endswith(".parquet")})
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert folders == [
        "camera=_none/day=" + today,  # the training set: outside the frames prefix
        "camera=cam-a/day=2026-12-01",
        "camera=cam-a/day=2026-12-02",
        "camera=cam-b/day=2026-12-02",
    ]

    # Idempotent: nothing new, nothing written (the watermark's overlap re-lists, the manifests skip).
    again = compact_bucket(archive, aws.bucket)["backbones"][backbone]
    assert (again["packed"], again["already_packed"], again["parts"]) == (0, 3 * PER_LABEL + 3, [])
    assert {k: v for k, v in parts(aws).items() if not k.endswith("_state.json")} == {
        k: v for k, v in written.items() if not k.endswith("_state.json")
    }

    # Incremental: one new frame -> one new part in its partition only.
    aws.s3.put_object(Bucket=aws.bucket, Key="training/car/late.png", Body=png("car", 999))
    featurize("training/")
    late = compact_locally(aws.endpoint_url, aws.bucket)["backbones"][backbone]
    assert (late["packed"], late["partitions"], late["already_packed"]) == (
        1,
        1,
        3 * PER_LABEL + 3,
    )  # the overlap re-lists them

    # Training: the Parquet source == the shards source, array for array.
    source = f"s3://{aws.bucket}/training/"
    shards = load_feature_shards(source, f"s3://{aws.bucket}/features/{backbone}/", s3_client=aws.s3)
    parquet = load_parquet_features(source, f"s3://{aws.bucket}/{root}", s3_client=aws.s3, batch_rows=4)
    assert parquet.uris == shards.uris and parquet.labels == shards.labels
    assert np.array_equal(parquet.y, shards.y) and parquet.sha256s == shards.sha256s
    assert parquet.features16.dtype == np.float16 and np.array_equal(parquet.features16, shards.features16)
    assert np.array_equal(parquet.hashes, shards.hashes)
    assert (parquet.missing, parquet.model_versions, parquet.backbone_sha256) == (
        shards.missing, shards.model_versions, shards.backbone_sha256)  # fmt: skip
    figures = [
        cross_validate(
            s.features, s.y, groups_of_hashes(s.hashes).group_ids, s.labels, folds=FOLDS, progress=False
        )
        for s in (shards, parquet)
    ]
    assert np.array_equal(figures[0].fold_of, figures[1].fold_of)
    assert np.array_equal(figures[0].oof_probabilities, figures[1].oof_probabilities)
    assert figures[0].mean == figures[1].mean

    # Filters: a camera partition and a capture-time window.
    dataset = feature_dataset(f"s3://{aws.bucket}/{root}", arrow_s3(aws.s3))
    frames = f"s3://{aws.bucket}/frames/"
    assert dataset.count_rows(filter=archive_filter(frames, cameras=["cam-a"])) == 2
    window = archive_filter(
        frames, since=datetime(2026, 12, 2, 8, tzinfo=UTC), until=datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
    )
    (row,) = dataset.to_table(columns=["key", "camera"], filter=window).to_pylist()
    assert row == {"key": "frames/cam-a/20261202T090000000Z.png", "camera": "cam-a"}
    features = dataset.schema.field("features").type
    assert (str(features.value_type), features.list_size) == ("halffloat", FEATURE_SIZE)

    # The Dask engine: the same grouped folds and a shippable model directory through the whole
    # chain (the parity gates raise on failure). Its metrics are not compared here: on 16 frames
    # each worker holds ~5 training rows, under min_child_samples, so distributed LightGBM learns
    # nothing; bench/archive_training.py compares them side by side on 100k rows.
    # `camsort train --features` as a whole (train()): the Parquet archive gives the shards' figures
    # and the same shipped head, on the local engine.
    settings = TrainSettings(folds=FOLDS, progress=False)
    runs = {
        name: train(SingleLabel(), StoredShards(source, uri, str(tiny_model_dir), aws.s3), tmp_path / name, settings)
        for name, uri in (("shards", f"s3://{aws.bucket}/features/{backbone}/"), ("parquet", f"s3://{aws.bucket}/{root}"))
    }  # fmt: skip
    assert np.array_equal(runs["shards"].cv.fold_of, runs["parquet"].cv.fold_of)
    assert np.array_equal(runs["shards"].cv.oof_probabilities, runs["parquet"].cv.oof_probabilities)
    assert runs["shards"].cv.mean == runs["parquet"].cv.mean and runs["shards"].cv.mean == figures[0].mean
    assert runs["shards"].cv.thresholds.to_dict() == runs["parquet"].cv.thresholds.to_dict()
    shipped = [onnx.load(str(tmp_path / name / "model.onnx")) for name in runs]
    trees = [[n for n in m.graph.node if n.op_type.startswith("TreeEnsemble")] for m in shipped]
    assert trees[0] and trees[0] == trees[1]  # the same head, split for split
    archive = StoredShards(
        source, f"s3://{aws.bucket}/{root}", str(tiny_model_dir), aws.s3, ArchiveOptions(engine="dask")
    )
    result = train(SingleLabel(), archive, tmp_path / "dask-model", settings)
    local = figures[1]
    assert np.array_equal(result.cv.fold_of, local.fold_of)
    # Grouped on both engines: no near-duplicate group is split across folds.
    groups = groups_of_hashes(parquet.hashes).group_ids
    for cv in (result.cv, runs["parquet"].cv):
        assert all(len(set(cv.fold_of[groups == g])) == 1 for g in np.unique(groups))
    assert set(result.cv.mean) == set(local.mean)
    training_set = result.manifest.training_set
    assert (training_set["features_from"], training_set["engine"].split(" ")[0]) == ("parquet", "dask")
    assert (tmp_path / "dask-model" / "model.onnx").is_file()  # the parity gates passed (they raise)
