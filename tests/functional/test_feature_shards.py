"""Featurize at scale: a featurize backfill writes float16 shards; training from them matches training
from local featurization of the same frames (features up to float16 rounding, identical folds)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from camsort.cli import main
from functions import wiring
from functions.handler import handle
from functions.manifest import MODEL_FILENAME
from functions.results import ResultsTable
from functions.settings import Settings
from infra.backfill import BackfillRequest, run_backfill_locally
from training.crossval import cross_validate
from training.dataset import load_dataset
from training.featurize import featurize
from training.neardup import dhash_groups, groups_of_hashes
from training.shards import load_feature_shards

BASE = {"bus": (200, 40, 40), "car": (40, 200, 40), "empty": (40, 40, 200)}
PER_LABEL = 6
FOLDS = 3


def frame(label: str, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    noise = rng.integers(-40, 40, (120, 160, 3))
    pixels = np.clip(np.array(BASE[label]) + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def invoke(aws, tiny_model, tmp_path):
    settings = Settings(model_uri="unused", results_table=aws.table, model_cache_dir=str(tmp_path / "m"))
    app = wiring.build_app(settings, s3_client=aws.s3, dynamodb_client=aws.dynamodb, model=tiny_model)
    return lambda event: handle(event, lambda: app)


def objects(aws, prefix):
    response = aws.s3.list_objects_v2(Bucket=aws.bucket, Prefix=prefix)
    return {o["Key"]: (o["ETag"], o["LastModified"]) for o in response.get("Contents", [])}


@pytest.mark.slow  # three LightGBM cross-validations and a backfill: ~40 s on 2 shared cores
def test_training_from_shards_matches_local_featurization(
    aws, aws_env, invoke, tiny_model, tiny_model_dir, tmp_path
):
    for label in BASE:
        for i in range(PER_LABEL):
            aws.s3.put_object(
                Bucket=aws.bucket,
                Key=f"training/{label}/{i:02d}.png",
                Body=frame(label, 100 * len(label) + i),
            )
    # The same content under a second name: one shard, two pointers.
    aws.s3.put_object(Bucket=aws.bucket, Key="training/car/copy-of-00.png", Body=frame("car", 300))
    aws.s3.put_object(Bucket=aws.bucket, Key="training/bus/broken.png", Body=b"\x89PNG truncated")

    request = BackfillRequest(source=f"s3://{aws.bucket}/training/", mode="featurize", per_frame_ms=88.0)
    table = ResultsTable(aws.table, aws.dynamodb)
    outcome = run_backfill_locally(request, s3=aws.s3, table=table, invoke=invoke, retry_pause_s=0)
    assert (outcome.succeeded, outcome.failed) == (3 * PER_LABEL + 1, 1)
    assert outcome.failed_by_reason == {"PermanentFailure: rejected (not_jpeg_or_png)": 1}
    assert aws.dynamodb.scan(TableName=aws.table)["Items"] == []  # featurize writes no results

    backbone = tiny_model.manifest.backbone_sha256
    written = objects(aws, "features/")
    assert sum(k.endswith(".npy") for k in written) == 3 * PER_LABEL  # the copy shares its content's shard
    assert sum(k.startswith(f"features/{backbone}/keys/") for k in written) == 3 * PER_LABEL + 1

    # Re-running writes nothing new.
    again = run_backfill_locally(request, s3=aws.s3, table=table, invoke=invoke, retry_pause_s=0)
    assert again.succeeded == 3 * PER_LABEL + 1
    assert objects(aws, "features/") == written

    shards = load_feature_shards(
        f"s3://{aws.bucket}/training/", f"s3://{aws.bucket}/features/{backbone}/", s3_client=aws.s3
    )
    assert shards.missing == [f"s3://{aws.bucket}/training/bus/broken.png"]

    # The same frames, the local way (training/pipeline.py's calls).
    dataset = load_dataset(
        f"s3://{aws.bucket}/training/", min_per_label=FOLDS, s3_client=aws.s3, progress=False
    )
    local = featurize(
        dataset.pixels(),
        dataset.sha256s(),
        tiny_model_dir / MODEL_FILENAME,
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    assert local.backbone_sha256 == backbone
    assert shards.uris == [item.uri for item in dataset.items]
    assert shards.labels == dataset.labels and np.array_equal(shards.y, dataset.targets())
    assert shards.sha256s == dataset.sha256s()
    # Features: the shards hold float16; the local float32 features rounded to float16 are identical,
    # and the float32 values differ from the shards' only by that rounding (relative 2**-11).
    assert np.array_equal(shards.features16, local.features.astype(np.float16))
    np.testing.assert_allclose(shards.features, local.features, rtol=2**-11, atol=0)
    # Groups and folds: identical (they depend on labels, hashes and the seed, not on the rounding).
    local_groups = dhash_groups(dataset.pixels())
    shard_groups = groups_of_hashes(shards.hashes)
    assert np.array_equal(shard_groups.group_ids, local_groups.group_ids)
    from_shards = cross_validate(
        shards.features, shards.y, shard_groups.group_ids, shards.labels, folds=FOLDS, seed=0, progress=False
    )
    from_local = cross_validate(
        local.features.astype(np.float16).astype(np.float32),
        dataset.targets(),
        local_groups.group_ids,
        dataset.labels,
        folds=FOLDS,
        seed=0,
        progress=False,
    )
    assert np.array_equal(from_shards.fold_of, from_local.fold_of)
    assert np.array_equal(from_shards.oof_probabilities, from_local.oof_probabilities)

    # And through the CLI.
    result = CliRunner().invoke(
        main,
        [
            "train",
            f"s3://{aws.bucket}/training/",
            "--features",
            f"s3://{aws.bucket}/features/{backbone}/",
            "--out",
            str(tmp_path / "out"),
            "--folds",
            str(FOLDS),
            "--endpoint-url",
            aws.endpoint_url,
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "out" / "cv.json").read_text())
    assert summary["fold_of"] == {uri: int(f) for uri, f in zip(shards.uris, from_local.fold_of, strict=True)}
