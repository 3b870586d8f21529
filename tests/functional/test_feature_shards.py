"""Featurize at scale: a featurize backfill writes float16 shards; training from them matches training
from local featurization of the same frames (features up to float16 rounding, identical folds), and
`camsort train --features --backbone-from` ships a model directory that classifies as the head trained
on the local features does. A model with another backbone is refused; one whose backbone computes
other features fails the parity gate and leaves --out untouched."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from camsort.cli import main
from export.parity import ParityError
from functions import wiring
from functions.errors import ConfigurationError
from functions.frames.manifest import MODEL_FILENAME, sha256_file
from functions.frames.model import ModelSession
from functions.handler import handle
from functions.settings import Settings
from functions.stores.results import ResultsTable
from infra.ops.backfill import BackfillRequest, run_backfill_locally
from tests.fixtures.tiny_model import TINY_MODEL_VERSION, tiny_model_proto, write_tiny_model
from training.data.dataset import load_dataset
from training.features.featurize import featurize
from training.features.neardup import dhash_groups, groups_of_hashes
from training.features.shards import load_feature_shards
from training.fit.crossval import cross_validate
from training.fit.heads import fit_head
from training.pipeline import SingleLabel, StoredShards, TrainSettings, train

BASE = {"bus": (200, 40, 40), "car": (40, 200, 40), "empty": (40, 40, 200)}
PER_LABEL = 6
FOLDS = 3


def train_from_shards(source, features, out_dir, *, s3_client, backbone_from, folds, progress):
    """The pipeline with the stored-shards source, as `camsort train --features` runs it."""
    shards = StoredShards(source, features, backbone_from, s3_client)
    return train(SingleLabel(), shards, out_dir, TrainSettings(folds=folds, progress=progress))


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


@pytest.mark.slow  # a backfill and five LightGBM cross-validations: 11 s here, ~40 s on 2 busy cores
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

    # Training ships the backbone that wrote the shards: without the model, the refusal names the
    # version that wrote them; a model recording another backbone is refused, before anything is
    # fitted or written.
    with pytest.raises(
        ConfigurationError, match=f"--backbone-from .*model version\\(s\\) {TINY_MODEL_VERSION}"
    ):
        train_from_shards(
            f"s3://{aws.bucket}/training/",
            f"s3://{aws.bucket}/features/{backbone}/",
            tmp_path / "refused",
            s3_client=aws.s3,
            backbone_from=None,
            folds=FOLDS,
            progress=False,
        )
    other = copy_with_backbone_sha(tiny_model_dir, tmp_path / "other", "ab" * 32)
    with pytest.raises(ConfigurationError) as refused:
        train_from_shards(
            f"s3://{aws.bucket}/training/",
            f"s3://{aws.bucket}/features/{backbone}/",
            tmp_path / "refused",
            s3_client=aws.s3,
            backbone_from=str(other),
            folds=FOLDS,
            progress=False,
        )
    assert "ab" * 32 in str(refused.value) and backbone in str(refused.value)
    assert TINY_MODEL_VERSION in str(refused.value)  # the model version that wrote the shards
    assert not (tmp_path / "refused").exists()
    # A model that claims the shards' backbone but computes other features fails the parity gate.
    impostor = impostor_model(tmp_path / "impostor", backbone)
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "marker").write_text("untouched")
    with pytest.raises(ParityError, match="features differ from the stored shards on 16 of 16 frames"):
        train_from_shards(
            f"s3://{aws.bucket}/training/",
            f"s3://{aws.bucket}/features/{backbone}/",
            tmp_path / "kept",
            s3_client=aws.s3,
            backbone_from=str(impostor),
            folds=FOLDS,
            progress=False,
        )
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["marker"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".kept.")] == []

    # And through the CLI, from the model's S3 prefix (what a backfill user has): a shippable model.
    for name in (MODEL_FILENAME, "manifest.json"):
        aws.s3.upload_file(str(tiny_model_dir / name), aws.bucket, f"models/{TINY_MODEL_VERSION}/{name}")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "train",
            f"s3://{aws.bucket}/training/",
            "--features",
            f"s3://{aws.bucket}/features/{backbone}/",
            "--backbone-from",
            f"s3://{aws.bucket}/models/{TINY_MODEL_VERSION}/",
            "--out",
            str(out),
            "--folds",
            str(FOLDS),
            "--endpoint-url",
            aws.endpoint_url,
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["cv"]["fold_of"] == from_local.fold_of.tolist()  # same order: shards.uris
    model = ModelSession.open(str(out), threads=1)  # verifies model.onnx against the manifest's sha256
    assert model.sha256 == sha256_file(out / MODEL_FILENAME)
    manifest = model.manifest
    assert manifest.backbone_sha256 == backbone and manifest.precision == tiny_model.manifest.precision
    assert manifest.training_set["features_from"] == "shards"
    assert manifest.training_set["features_written_by"] == [TINY_MODEL_VERSION]
    assert manifest.training_set["features"] == f"s3://{aws.bucket}/features/{backbone}/"
    assert manifest.thresholds == from_local.thresholds.as_dict()
    gate = manifest.parity["backbone_vs_shards"]
    assert (gate["n_images"], gate["frames_outside_tolerance"]) == (16, 0)
    assert gate["features_max_rel_diff"] <= 2**-11  # same CPU: the float16 rounding alone
    assert manifest.parity["trees"]["labels_disagree"] == 0
    assert {"report.html", "roc.png", "confusion.png"} <= {p.name for p in out.iterdir()}
    # It classifies every training frame as the same head trained on the local features would
    # (fitted the way train does, merged into the same backbone): same probabilities, same labels.
    local_head = fit_head(
        "lightgbm",
        "multiclass",
        local.features.astype(np.float16).astype(np.float32),
        dataset.targets(),
        dataset.labels,
        seed=0,
    )
    probabilities, features = model.predict(dataset.pixels())
    # Its backbone is the one that wrote the shards (so a featurize job with it writes the same shards).
    assert np.array_equal(features.astype(np.float16), shards.features16)
    expected = local_head.predict_proba(features)
    np.testing.assert_allclose(probabilities, expected, atol=1e-4)
    assert np.array_equal(probabilities.argmax(axis=1), expected.argmax(axis=1))
    assert np.array_equal(probabilities.argmax(axis=1), dataset.targets())  # and they are right

    # Frames replaced or deleted since they were featurized have no shard to compare with: left out of
    # the parity sample and named (4 of 19 touched: at least one is among the 16 sampled).
    touched = [f"training/{label}/01.png" for label in BASE] + ["training/car/02.png"]
    for key in touched[:3]:
        aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=frame("car", 999))
    aws.s3.delete_object(Bucket=aws.bucket, Key=touched[3])
    again = train_from_shards(
        f"s3://{aws.bucket}/training/",
        f"s3://{aws.bucket}/features/{backbone}/",
        tmp_path / "again",
        s3_client=aws.s3,
        backbone_from=str(tiny_model_dir),
        folds=FOLDS,
        progress=False,
    )
    changed = again.parity["backbone_vs_shards"]["changed_since_featurized"]
    assert len(changed) >= 1 and set(changed) <= {f"s3://{aws.bucket}/{key}" for key in touched}
    assert again.parity["backbone_vs_shards"]["n_images"] == 16 - len(changed)
    # When none is left, there is nothing to prove the backbone with: refused.
    for i, uri in enumerate(shards.uris):
        aws.s3.put_object(Bucket=aws.bucket, Key=uri.split("/", 3)[3], Body=frame("bus", 5000 + i))
    with pytest.raises(ParityError, match="none of the 16 sampled training frames"):
        train_from_shards(
            f"s3://{aws.bucket}/training/",
            f"s3://{aws.bucket}/features/{backbone}/",
            tmp_path / "never",
            s3_client=aws.s3,
            backbone_from=str(tiny_model_dir),
            folds=FOLDS,
            progress=False,
        )
    assert not (tmp_path / "never").exists()


def copy_with_backbone_sha(model_dir, target, backbone_sha256: str):
    """The same model, its manifest recording another backbone (model.onnx's sha256 still valid)."""
    shutil.copytree(model_dir, target)
    data = json.loads((target / "manifest.json").read_text())
    data["backbone_sha256"] = backbone_sha256
    (target / "manifest.json").write_text(json.dumps(data))
    return target


def impostor_model(target, backbone_sha256: str):
    """A contract model whose manifest claims ``backbone_sha256`` but whose features are 1 % off."""
    import onnx
    from onnx import numpy_helper

    proto = tiny_model_proto()
    for i, tensor in enumerate(proto.graph.initializer):
        if tensor.name == "feature_weights":
            scaled = numpy_helper.to_array(tensor) * np.float32(1.01)
            proto.graph.initializer[i].CopyFrom(numpy_helper.from_array(scaled, "feature_weights"))
    write_tiny_model(target)
    onnx.save(proto, target / MODEL_FILENAME)
    data = json.loads((target / "manifest.json").read_text())
    data["model_sha256"] = sha256_file(target / MODEL_FILENAME)
    data["backbone_sha256"] = backbone_sha256
    (target / "manifest.json").write_text(json.dumps(data))
    return target
