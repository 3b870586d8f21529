"""Results per model version: a backfill job with another model writes beside the live result.

The handler runs in process against the moto server with two real tiny ONNX models: the
live one (``tiny-1``: red -> bus, green -> car) and a second version (``tiny-2``, same graph,
labels reversed: red -> empty, green -> car), so the two result sets differ visibly.
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from camsort.cli import main
from functions import wiring
from functions.archive.jobs import JobArguments
from functions.frames.manifest import sha256_file
from functions.handler import handle
from functions.settings import Settings
from functions.stores.results import ResultsTable, result_sort_key
from tests.fixtures.tiny_model import TINY_LABELS, TINY_MODEL_VERSION, write_tiny_model

EVENTS = Path(__file__).resolve().parents[1] / "events"
SECOND_VERSION = "tiny-2"
RED, GREEN = (255, 0, 0), (0, 255, 0)


def jpeg(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def second_model_dir(tmp_path_factory) -> Path:
    return write_tiny_model(
        tmp_path_factory.mktemp("tiny-2"), labels=list(reversed(TINY_LABELS)), model_version=SECOND_VERSION
    )


@pytest.fixture
def app(aws, tiny_model, tmp_path):
    settings = Settings(
        model_uri="unused: model injected",
        results_table=aws.table,
        model_cache_dir=str(tmp_path / "cache"),
        write_tags=True,  # so that the second model's job is seen to leave the live tags alone
    )
    return wiring.build_app(settings, s3_client=aws.s3, dynamodb_client=aws.dynamodb, model=tiny_model)


def batch_event(
    bucket: str, keys: list[str], user_arguments: dict[str, str], job_id: str = "job-1"
) -> list[dict]:
    """One schema 2.0 invocation per key, as S3 Batch Operations sends them."""
    template = json.loads((EVENTS / "batch_operations_v2.json").read_text())
    events = []
    for index, key in enumerate(keys):
        event = copy.deepcopy(template)
        event["invocationId"] = f"{job_id}-inv-{index}"
        event["job"] = {"id": job_id, "userArguments": user_arguments}
        event["tasks"] = [
            {"taskId": f"{job_id}-task-{index}", "s3Bucket": bucket, "s3Key": key, "s3VersionId": None}
        ]
        events.append(event)
    return events


def run(app, events) -> list[tuple[str, str]]:
    codes = []
    for event in events:
        (result,) = handle(event, lambda: app)["results"]
        codes.append((result["resultCode"], result["resultString"]))
    return codes


def scan(aws) -> list[dict]:
    table = ResultsTable(aws.table, aws.dynamodb)
    items = aws.dynamodb.scan(TableName=aws.table, ConsistentRead=True)["Items"]
    return sorted(
        (table.get(i["object_id"]["S"], i["object_version"]["S"]) for i in items),
        key=lambda i: (i["object_id"], i["object_version"]),
    )


def test_second_model_writes_beside_the_live_result_and_reruns_write_nothing(aws, app, second_model_dir):
    keys = {"frames/cam-01/20261122T070000000Z.jpg": RED, "frames/cam-01/20261122T070100000Z.jpg": GREEN}
    etags = {}
    for key, colour in keys.items():
        etags[key] = aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=jpeg(colour))["ETag"].strip('"')

    live = JobArguments(model_version=TINY_MODEL_VERSION).to_user_arguments()
    assert [code for code, _ in run(app, batch_event(aws.bucket, list(keys), live))] == ["Succeeded"] * 2
    second = JobArguments(
        model_version=SECOND_VERSION,
        model_uri=str(second_model_dir),
        model_sha256=sha256_file(second_model_dir / "model.onnx"),
    ).to_user_arguments()
    codes = run(app, batch_event(aws.bucket, list(keys), second, job_id="job-2"))
    assert codes == [("Succeeded", "ok: empty (0.9999)"), ("Succeeded", "ok: car (0.9999)")]

    items = scan(aws)
    expected = [
        (f"{aws.bucket}/{key}", result_sort_key(etags[key], version), version, label)
        for key, answers in zip(keys, [("bus", "empty"), ("car", "car")], strict=True)
        for version, label in zip((None, SECOND_VERSION), answers, strict=True)
    ]
    assert [
        (
            i["object_id"],
            i["object_version"],
            None if i["model_version"] == TINY_MODEL_VERSION else i["model_version"],
            i["label"],
        )
        for i in items
    ] == sorted(expected)
    live_items = [i for i in items if i["model_version"] == TINY_MODEL_VERSION]
    versioned = [i for i in items if i["model_version"] == SECOND_VERSION]
    # The live items keep their key and the camera index; the second version's stay out of it.
    assert all(i["object_version"] == etags[i["key"]] and i["camera_id"] == "cam-01" for i in live_items)
    assert all("camera_id" not in i and "captured_at" not in i for i in versioned)
    assert {i["frame_version"] for i in versioned} == set(etags.values())
    assert [i["key"] for i in ResultsTable(aws.table, aws.dynamodb).query_camera("cam-01")] == list(keys)
    # Tags are the live label: the second model does not touch them.
    tags = aws.s3.get_object_tagging(Bucket=aws.bucket, Key=next(iter(keys)))["TagSet"]
    assert {t["Key"]: t["Value"] for t in tags}["camsort-label"] == "bus"

    # Re-running both jobs writes nothing: every task is a duplicate, the items are unchanged.
    again = run(app, batch_event(aws.bucket, list(keys), live)) + run(
        app, batch_event(aws.bucket, list(keys), second, job_id="job-2")
    )
    assert again == [("Succeeded", "duplicate: result already recorded")] * 4
    assert scan(aws) == items


def test_results_for_a_model_version_follow_the_camera_index(aws, app, second_model_dir):
    keys = [f"frames/cam-02/20261122T07{minute:02d}00000Z.jpg" for minute in range(3)]
    for key in keys:
        aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=jpeg(RED))
    run(app, batch_event(aws.bucket, keys, {}))
    second = JobArguments(
        model_version=SECOND_VERSION,
        model_uri=str(second_model_dir),
        model_sha256=sha256_file(second_model_dir / "model.onnx"),
    ).to_user_arguments()
    run(app, batch_event(aws.bucket, keys[:2], second, job_id="job-2"))  # the third frame: not yet

    table = ResultsTable(aws.table, aws.dynamodb)
    live = table.query_camera("cam-02")
    answers = table.model_results(live, SECOND_VERSION)
    assert [(a["key"], a["label"], a["camera_id"], a["captured_at"]) for a in answers] == [
        (keys[0], "empty", "cam-02", "2026-11-22T07:00:00.000Z"),
        (keys[1], "empty", "cam-02", "2026-11-22T07:01:00.000Z"),
    ]
    assert [a["label"] for a in table.model_results(live, TINY_MODEL_VERSION)] == ["bus"] * 3

    # The same through the CLI.
    options = ["results", "--camera", "cam-02", "--endpoint-url", aws.endpoint_url, "--table", aws.table]
    printed = CliRunner().invoke(main, [*options, "--model-version", SECOND_VERSION, "--json"])
    assert printed.exit_code == 0, printed.output
    assert [(r["key"], r["label"], r["model_version"]) for r in json.loads(printed.output)] == [
        (keys[0], "empty", SECOND_VERSION),
        (keys[1], "empty", SECOND_VERSION),
    ]
    printed = CliRunner().invoke(main, [*options, "--json"])
    assert [r["label"] for r in json.loads(printed.output)] == ["bus"] * 3


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"mode": "sharpen"}, "mode='sharpen'"),
        ({"modelVersion": SECOND_VERSION}, "need modelUri and modelSha256"),
        ({"modelVersion": SECOND_VERSION, "modelUri": "x", "modelSha256": "0" * 64}, None),
        ({"colour": "red"}, "not understood"),
    ],
)
def test_unusable_job_arguments_fail_every_task_permanently_and_write_nothing(
    aws, app, second_model_dir, arguments, message
):
    if message is None:  # a pin that does not match the artifact
        arguments = arguments | {"modelUri": str(second_model_dir)}
        message = "is not the job's pin"
    key = "frames/cam-03/a.jpg"
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=jpeg(RED))
    ((code, text),) = run(app, batch_event(aws.bucket, [key], arguments, job_id=f"job-{len(arguments)}"))
    assert code == "PermanentFailure"
    assert message in text
    assert aws.dynamodb.scan(TableName=aws.table)["Items"] == []


def test_a_jobs_pin_is_checked_on_the_bytes_before_any_session_is_created(
    aws, app, second_model_dir, tmp_path
):
    """An artifact whose bytes are not even a model: a wrong pin must refuse it before
    onnxruntime is asked to load (and warm up) anything, so the refusal names the pin, not ONNX."""
    artifact = tmp_path / "not-a-model"
    artifact.mkdir()
    (artifact / "model.onnx").write_bytes(b"not an onnx graph at all")
    manifest = json.loads((second_model_dir / "manifest.json").read_text())
    manifest["model_sha256"] = sha256_file(artifact / "model.onnx")  # self-consistent bytes
    (artifact / "manifest.json").write_text(json.dumps(manifest))
    key = "frames/cam-03/b.jpg"
    aws.s3.put_object(Bucket=aws.bucket, Key=key, Body=jpeg(RED))
    arguments = {"modelVersion": SECOND_VERSION, "modelUri": str(artifact), "modelSha256": "0" * 64}

    ((code, text),) = run(app, batch_event(aws.bucket, [key], arguments, job_id="job-unloadable"))

    assert code == "PermanentFailure"
    assert f"model sha256 {manifest['model_sha256']} is not the job's pin {'0' * 64}" in text
    assert "onnxruntime" not in text
    # with its right pin the same bytes get as far as onnxruntime, which refuses them
    arguments["modelSha256"] = manifest["model_sha256"]
    ((code, text),) = run(app, batch_event(aws.bucket, [key], arguments, job_id="job-unloadable-2"))
    assert code == "PermanentFailure" and "onnxruntime cannot load it" in text
