"""Done-when of issue 13, over a moto server on 127.0.0.1 with the real handler and `camsort backfill`:

frames that existed before the S3 notification was configured are backfilled (only those without a
result), then re-classified with a second model version; both result sets are present, nothing is
lost (every frame has one live result, the queues are empty), the completion reports match the
manifests and the results, and re-running writes nothing new.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from camsort.cli import main
from functions.stores.results import ResultsTable, frame_versions, result_sort_key
from infra.local.batch_report import read_report
from infra.local.stack import upload_model
from tests.fixtures.tiny_model import TINY_LABELS, TINY_MODEL_VERSION, write_tiny_model

pytestmark = pytest.mark.e2e

SECOND = "tiny-2"  # same graph, labels reversed: red -> empty, blue -> bus, green -> car
COLOURS = {"bus": (255, 0, 0), "car": (0, 255, 0), "empty": (0, 0, 255)}
REVERSED = {"bus": "empty", "car": "car", "empty": "bus", "unknown": "unknown"}


def jpeg(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (96, 64), colour).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def backfill(endpoint: str, stack, model_uri: str, *extra: str) -> dict:
    result = CliRunner().invoke(
        main,
        [
            "backfill",
            f"s3://{stack.names.bucket}/{stack.names.frames_prefix}",
            "--endpoint-url",
            endpoint,
            "--table",
            stack.names.table,
            "--function-model-uri",
            model_uri,
            "--report",
            "all",
            "--concurrency",
            "2",
            "--per-frame-ms",
            "88",
            "--json",
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_backfill_before_the_notification_then_reclassify_with_a_second_model(
    local_stack, stack_model_uri, run_worker, moto_server, tmp_path, aws_env, monkeypatch
):
    # The local run's temporary files land here: the model cache must be gone after each run,
    # the function's log kept.
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    stack, endpoint = local_stack, moto_server.endpoint_url
    s3, bucket = stack.client("s3"), stack.names.bucket
    sqs = stack.client("sqs")
    table = ResultsTable(stack.names.table, stack.client("dynamodb"))

    # The archive: frames uploaded while no notification was configured.
    notification = s3.get_bucket_notification_configuration(Bucket=bucket)
    notification.pop("ResponseMetadata")
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    archive = {}
    for i, label in enumerate(["bus", "car", "empty", "bus", "car", "empty"]):
        key = f"frames/cam-0{i % 2 + 1}/20261120T0{i}0000000Z.jpg"
        s3.put_object(Bucket=bucket, Key=key, Body=jpeg(COLOURS[label]))
        archive[key] = label
    s3.put_object(Bucket=bucket, Key="frames/cam-01/20261120T090000000Z.jpg", Body=b"not a frame")
    archive["frames/cam-01/20261120T090000000Z.jpg"] = None
    # Then the notification is configured: new frames are classified as they arrive.
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=notification)
    live = {}
    for i, label in enumerate(["car", "empty"]):
        key = f"frames/cam-02/20261121T0{i}0000000Z.jpg"
        s3.put_object(Bucket=bucket, Key=key, Body=jpeg(COLOURS[label]))
        live[key] = label
    assert run_worker().failed_batches == 0
    every = {**archive, **live}

    def live_items():
        return {i["key"]: i for cam in ("cam-01", "cam-02") for i in table.query_camera(cam)}

    assert set(live_items()) == set(live)  # the archive has no results yet

    # 1. Backfill what has no result: exactly the archive.
    first = backfill(endpoint, stack, stack_model_uri, "--only-missing")
    assert [p.name for p in scratch.iterdir()] == [Path(first["function_log"]).name]
    assert Path(first["function_log"]).read_text()  # the function logged into it
    assert (first["listed"], first["selected"], first["succeeded"], first["failed"]) == (9, 7, 6, 1)
    assert first["failed_by_reason"] == {"PermanentFailure: rejected (not_jpeg_or_png)": 1}
    items = live_items()
    assert set(items) == set(every)
    assert {k: i.get("label") for k, i in items.items()} == {
        k: (label if label else None) for k, label in every.items()
    }
    assert {i["model_version"] for i in items.values()} == {TINY_MODEL_VERSION}

    # 2. A second model version over the whole prefix: its results beside the live ones.
    second_dir = write_tiny_model(
        tmp_path / "second", labels=list(reversed(TINY_LABELS)), model_version=SECOND
    )
    upload_model(stack, second_dir, version=SECOND)
    second = backfill(endpoint, stack, stack_model_uri, "--model-version", SECOND)
    assert (second["selected"], second["succeeded"], second["failed"]) == (9, 8, 1)

    # Both result sets present, the live one untouched.
    assert live_items() == items
    for key, label in every.items():
        # Keyed by the frame's version id (the manifest carries it); moto's notifications carry no
        # versionId, so the live items of the two notified frames are keyed by ETag.
        found = [table.get(f"{bucket}/{key}", result_sort_key(v, SECOND)) for v in frame_versions(items[key])]
        (other,) = [item for item in found if item]
        assert other["model_version"] == SECOND
        assert other.get("label") == (REVERSED[label] if label else None)
        assert other["status"] == ("ok" if label else "rejected")
    runner = CliRunner()
    shown = runner.invoke(
        main,
        [
            "results",
            "--camera",
            "cam-02",
            "--endpoint-url",
            endpoint,
            "--table",
            stack.names.table,
            "--model-version",
            SECOND,
            "--json",
        ],
    )
    assert shown.exit_code == 0, shown.output
    assert {r["key"]: r["label"] for r in json.loads(shown.output)} == {
        k: REVERSED[label] for k, label in every.items() if "/cam-02/" in k
    }

    # The completion reports match the manifests and the results.
    for outcome in (first, second):
        manifest_key = outcome["manifest_uri"].removeprefix(f"s3://{bucket}/")
        manifest_rows = s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read().decode().splitlines()
        rows = read_report(s3, bucket, f"batch/reports/job-{outcome['job_id']}/manifest.json")
        assert len(rows) == len(manifest_rows) == outcome["selected"]
        assert {r.key: r.status for r in rows} == {
            k: ("succeeded" if every[k] else "failed") for k in (r.key for r in rows)
        }
    assert {
        r.key for r in read_report(s3, bucket, f"batch/reports/job-{first['job_id']}/manifest.json")
    } == set(archive)

    # Nothing lost, nothing extra: no message waiting or dead-lettered, no stray results.
    for url in (stack.queue_url, stack.dead_letter_queue_url):
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "0", url
    count = stack.client("dynamodb").scan(TableName=stack.names.table, Select="COUNT")["Count"]
    assert count == 2 * len(every)

    # 3. Re-running writes nothing new; --only-missing finds nothing to do.
    again = backfill(endpoint, stack, stack_model_uri, "--model-version", SECOND)
    # Every task answers "duplicate" (the rejected frame's result is recorded too): Succeeded.
    assert (again["succeeded"], again["failed"]) == (9, 0)
    rows = read_report(s3, bucket, f"batch/reports/job-{again['job_id']}/manifest.json")
    assert {r.message for r in rows} == {"duplicate: result already recorded"}
    assert stack.client("dynamodb").scan(TableName=stack.names.table, Select="COUNT")["Count"] == count
    nothing = backfill(endpoint, stack, stack_model_uri, "--model-version", SECOND, "--only-missing")
    assert (nothing["selected"], nothing["job_id"]) == (0, None)


def test_a_featurize_backfill_is_compacted_into_parquet_when_it_ends(
    local_stack, stack_model_uri, moto_server, tmp_path, aws_env, monkeypatch
):
    """`camsort backfill --mode featurize --endpoint-url` runs the compaction after the job, under
    the compact function's derived role, and its --json output carries the compaction's report."""
    import numpy as np

    from training.features.parquet_features import arrow_s3, feature_dataset
    from training.features.shards import load_feature_shards

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stack, endpoint = local_stack, moto_server.endpoint_url
    s3, bucket = stack.client("s3"), stack.names.bucket
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
    keys = [f"frames/cam-0{i % 2 + 1}/2026112{i}T080000000Z.jpg" for i in range(4)]
    for key, label in zip(keys, ["bus", "car", "empty", "bus"], strict=True):
        s3.put_object(Bucket=bucket, Key=key, Body=jpeg(COLOURS[label]))

    first = backfill(endpoint, stack, stack_model_uri, "--mode", "featurize")
    assert (first["selected"], first["succeeded"], first["failed"]) == (4, 4, 0)
    ((backbone, report),) = first["compaction"]["backbones"].items()
    assert (report["packed"], report["partitions"], report["skipped"]) == (4, 4, [])

    # The Parquet rows are the shards' vectors, partitioned by camera and capture day.
    dataset = feature_dataset(f"s3://{bucket}/archive/features/{backbone}/", arrow_s3(s3))
    table = dataset.to_table(columns=["key", "camera", "day", "features"]).sort_by("key")
    keys = sorted(keys)
    assert table.column("key").to_pylist() == keys
    assert table.column("camera").to_pylist() == ["cam-01", "cam-01", "cam-02", "cam-02"]
    assert table.column("day").to_pylist() == ["2026-11-20", "2026-11-22", "2026-11-21", "2026-11-23"]
    # The shard reader wants label folders (frames/<label>/...): read the shards of the prefix as one
    # label per camera, which is what it takes from the first path part.
    shards = load_feature_shards(
        f"s3://{bucket}/frames/", f"s3://{bucket}/features/{backbone}/", s3_client=s3, min_per_label=1
    )
    vectors = np.stack(table.column("features").to_numpy(zero_copy_only=False))
    order = [shards.uris.index(f"s3://{bucket}/{k}") for k in keys]
    assert sorted(order) == [0, 1, 2, 3]
    assert vectors.dtype == np.float16 and np.array_equal(vectors, shards.features16[order])

    # A second featurize job over the same frames packs nothing new.
    again = backfill(endpoint, stack, stack_model_uri, "--mode", "featurize")
    assert again["compaction"]["backbones"][backbone]["packed"] == 0
