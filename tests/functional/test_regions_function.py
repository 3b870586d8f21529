"""The function with regions, against a moto server and real tiny ONNX models: one ONNX call per
model over every crop of an invocation, region items then the frame item, the regions tag,
redelivery completing a half-written set, and cameras without regions exactly as before.

The frame is four colour quadrants; the tiny models answer by mean colour, so each region's
label is known: ``default`` (bus/car/empty) says red -> bus, green -> car, blue -> empty and grey
-> unknown; ``bay`` (occupied/free/dark) says red -> occupied, green -> free, blue -> dark.
"""

from __future__ import annotations

import io
import json
import uuid

import pytest
from PIL import Image

from functions.frames.model import ModelSession
from functions.frames.outputs import REGIONS_TAG, region_sort_key
from functions.frames.shadow import ShadowScorer
from functions.handler import handle
from functions.state.camera_state import CameraStates
from functions.state.smoothing import SmoothingConfig
from functions.stores.camera_configs import CameraConfigObjects, CameraConfigs, camera_config_key
from functions.stores.results import ResultsTable
from infra.deploy.topology import StackNames
from infra.local.stack import create_review_table, create_state_resources
from tests.fixtures.aws import unique_name
from tests.fixtures.tiny_model import write_tiny_model
from tests.functional import test_handler
from tests.functional.test_handler import RED, CountingModel, item_of, jpeg, sqs_event, tags_of
from tests.functional.test_review_marking import entries, quota

make_app = test_handler.make_app  # the handler tests' fixtures, shared
frames = test_handler.frames

GREEN, BLUE, GREY = (0, 255, 0), (0, 0, 255), (128, 128, 128)
# Inset from the quadrant edges, where JPEG blurs the colours into each other.
REGIONS = {
    "regions": [
        {"name": "q1", "box": [0.05, 0.05, 0.45, 0.45]},
        {"name": "q2", "box": [0.55, 0.05, 0.95, 0.45], "model": "bay"},
        {"name": "q3", "box": [0.05, 0.55, 0.45, 0.95], "model": "bay"},
        {"name": "q4", "box": [0.55, 0.55, 0.95, 0.95]},
    ]
}
EXPECTED = {"q1": "bus", "q2": "free", "q3": "dark", "q4": "unknown"}


def quadrants(size=(640, 480), colours=(RED, GREEN, BLUE, GREY)) -> bytes:
    width, height = size
    image = Image.new("RGB", size)
    for colour, (left, top) in zip(
        colours,
        ((0, 0), (width // 2, 0), (0, height // 2), (width // 2, height // 2)),
        strict=True,
    ):
        image.paste(colour, (left, top, left + width // 2, top + height // 2))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def bay_model(tmp_path_factory) -> ModelSession:
    directory = write_tiny_model(tmp_path_factory.mktemp("bay"), ["occupied", "free", "dark"], "bay-1")
    return ModelSession.open(str(directory), threads=1)


@pytest.fixture
def regions_app(aws, make_app, bay_model, tiny_model):
    """A tagging app with the named model ``bay`` and cameras' regions read from the frames bucket."""

    def build(**overrides):
        app = make_app(write_tags=True, **overrides)
        app.model = CountingModel(tiny_model)
        app.named_models = {"bay": CountingModel(bay_model)}
        objects = CameraConfigObjects(aws.s3, aws.bucket)
        app.camera_configs = CameraConfigs(
            objects.fetch, ttl_seconds=60, known_models=app.models, source=objects.uri
        )
        return app

    return build


def set_regions(aws, camera: str, config: dict) -> None:
    aws.s3.put_object(Bucket=aws.bucket, Key=camera_config_key(camera), Body=json.dumps(config).encode())


def region_items(aws, key: str, version: str) -> dict[str, dict]:
    table = ResultsTable(aws.table, aws.dynamodb)
    found = table.get_items([(f"{aws.bucket}/{key}", region_sort_key(version, name)) for name in EXPECTED])
    return {item["region"]: item for item in found.values()}


def test_all_crops_of_one_model_go_through_one_call_and_each_region_gets_its_models_answer(
    aws, regions_app, frames
):
    set_regions(aws, "cam-r1", REGIONS)
    records = [frames.put(f"frames/cam-r1/{i}.jpg", quadrants()) for i in range(2)]
    records.append(frames.put("frames/cam-plain/0.jpg", jpeg(RED)))  # no regions: the whole frame
    app = regions_app()

    assert handle(sqs_event(("m-1", records[:2]), ("m-2", records[2:])), lambda: app) == {
        "batchItemFailures": []
    }

    assert app.model.batches == [5]  # 2 frames x 2 default regions + 1 whole frame, one call
    assert app.named_models["bay"].batches == [4]  # 2 frames x 2 bay regions, one call
    for record in records[:2]:
        key, etag = (
            f"frames/{record['s3']['object']['key'].split('frames/')[1]}",
            record["s3"]["object"]["eTag"],
        )
        frame = item_of(aws, key, etag)
        assert (frame["status"], frame["regions"]) == ("ok", EXPECTED)
        assert "label" not in frame and frame["camera_id"] == "cam-r1"
        regions = region_items(aws, key, etag)
        assert {name: item["label"] for name, item in regions.items()} == EXPECTED
        assert {name: item["model_name"] for name, item in regions.items()} == {
            "q1": "default", "q2": "bay", "q3": "bay", "q4": "default"
        }  # fmt: skip
        assert {item["model_version"] for name, item in regions.items() if name in ("q2", "q3")} == {"bay-1"}
        # Out of the camera index: region items carry region_camera_id instead.
        assert all(
            "camera_id" not in item and item["region_camera_id"] == "cam-r1" for item in regions.values()
        )
        assert tags_of(aws, key) == {REGIONS_TAG: "q1=bus q2=free q3=dark q4=unknown"}
    plain = item_of(aws, "frames/cam-plain/0.jpg", records[2]["s3"]["object"]["eTag"])
    assert (plain["label"], "regions" in plain) == ("bus", False)
    # The camera index holds one item per frame, whatever the regions.
    assert len(ResultsTable(aws.table, aws.dynamodb).query_camera("cam-r1")) == 2


def test_a_model_that_fails_fails_only_the_frames_it_had_crops_of(aws, regions_app, frames):
    set_regions(aws, "cam-r2", REGIONS)
    records = [
        frames.put("frames/cam-r2/0.jpg", quadrants()),
        frames.put("frames/cam-plain/1.jpg", jpeg(RED)),
    ]
    app = regions_app()

    def broken(images):
        raise RuntimeError("bay model broke")

    app.named_models["bay"].predict = broken

    assert handle(sqs_event(("m-1", records[:1]), ("m-2", records[1:])), lambda: app) == {
        "batchItemFailures": [{"itemIdentifier": "m-1"}]
    }
    assert item_of(aws, "frames/cam-r2/0.jpg", records[0]["s3"]["object"]["eTag"]) is None
    assert region_items(aws, "frames/cam-r2/0.jpg", records[0]["s3"]["object"]["eTag"]) == {}
    assert item_of(aws, "frames/cam-plain/1.jpg", records[1]["s3"]["object"]["eTag"])["label"] == "bus"


def test_a_redelivery_completes_a_half_written_set_and_a_committed_frame_is_a_duplicate(
    aws, regions_app, frames
):
    set_regions(aws, "cam-r3", REGIONS)
    record = frames.put("frames/cam-r3/0.jpg", quadrants())
    etag, key = record["s3"]["object"]["eTag"], "frames/cam-r3/0.jpg"
    # What a delivery that died after its first region item left behind: q1, no frame item.
    table = ResultsTable(aws.table, aws.dynamodb)
    partial = {
        "object_id": f"{aws.bucket}/{key}",
        "object_version": region_sort_key(etag, "q1"),
        "region": "q1",
        "label": "stale",
        "sequencer": record["s3"]["object"]["sequencer"].upper().rjust(32, "0"),
    }
    assert table.put_result(partial, same_event_overwrites=True)
    event = sqs_event(("m-1", [record]))
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "2"

    assert handle(event, lambda: regions_app()) == {"batchItemFailures": []}
    regions = region_items(aws, key, etag)
    assert {name: item["label"] for name, item in regions.items()} == EXPECTED  # q1 overwritten
    written_at = {name: item["processed_at"] for name, item in regions.items()}

    app = regions_app()  # delivered once more: the frame item is there, nothing is written again
    assert handle(event, lambda: app) == {"batchItemFailures": []}
    assert app.model.batches == [] and app.named_models["bay"].batches == []
    assert {name: item["processed_at"] for name, item in region_items(aws, key, etag).items()} == written_at


def test_an_older_event_never_overwrites_a_newer_events_region_items(aws, regions_app, frames):
    set_regions(aws, "cam-r4", REGIONS)
    key = "frames/cam-r4/0.jpg"
    newer = frames.put(key, quadrants())
    etag = newer["s3"]["object"]["eTag"]
    older = frames.record(key, size=newer["s3"]["object"]["size"], etag=etag, sequencer="0A1B2C3D4E5F678900")
    assert handle(sqs_event(("m-1", [newer])), lambda: regions_app()) == {"batchItemFailures": []}
    written_at = {name: item["processed_at"] for name, item in region_items(aws, key, etag).items()}

    assert handle(sqs_event(("m-2", [older])), lambda: regions_app()) == {"batchItemFailures": []}
    assert {name: item["processed_at"] for name, item in region_items(aws, key, etag).items()} == written_at


def test_each_models_candidate_scores_that_models_crops_and_records_beside_each_region(
    aws, regions_app, frames, tiny_model, bay_model
):
    set_regions(aws, "cam-r5", REGIONS)
    records = [
        frames.put("frames/cam-r5/0.jpg", quadrants()),
        frames.put("frames/cam-plain/2.jpg", jpeg(RED)),
    ]
    app = regions_app()
    app.shadow = ShadowScorer(model=CountingModel(tiny_model), sample_rate=1.0)
    app.named_shadows = {"bay": ShadowScorer(model=CountingModel(bay_model), sample_rate=1.0)}

    assert handle(sqs_event(("m-1", records)), lambda: app) == {"batchItemFailures": []}

    assert (app.shadow.model.batches, app.named_shadows["bay"].model.batches) == ([3], [2])  # one call each
    etag = records[0]["s3"]["object"]["eTag"]
    shadows = {
        name: item.get("shadow_label")
        for name, item in region_items(aws, "frames/cam-r5/0.jpg", etag).items()
    }
    assert shadows == EXPECTED  # the candidates are the live models here: the same answers
    assert "shadow_label" not in item_of(aws, "frames/cam-r5/0.jpg", etag)  # the frame item has no answer
    assert item_of(aws, "frames/cam-plain/2.jpg", records[1]["s3"]["object"]["eTag"])["shadow_label"] == "bus"


def test_each_region_has_its_own_state_rule_and_numbered_events(aws, regions_app, frames):
    names = StackNames.for_stage(f"rs-{uuid.uuid4().hex[:8]}")
    create_state_resources(aws.endpoint_url, names)
    config = json.loads(json.dumps(REGIONS))
    config["regions"][1]["smoothing"] = {"k": 1}  # q2 changes on its first frame, q3 needs 2 in a row
    set_regions(aws, "cam-rs", config)
    app = regions_app(state_table=names.state_table)
    for second, q2 in enumerate((GREEN, RED)):  # bay q2: free, then occupied; q3 dark throughout
        key = f"frames/cam-rs/20261122T1200{second:02d}000Z.jpg"
        record = frames.put(key, quadrants(colours=(RED, q2, BLUE, GREY)))
        assert handle(sqs_event((f"m-{second}", [record])), lambda: app) == {"batchItemFailures": []}

    states = CameraStates(names.state_table, aws.dynamodb, SmoothingConfig())
    assert {name: states.load("cam-rs", name).state for name in EXPECTED} == {
        "q1": "bus", "q2": "occupied", "q3": "dark", "q4": "none"
    }  # fmt: skip
    whole = states.load("cam-rs")  # the camera's own: its health alone (no region is named default)
    assert (whole.window, whole.episode, whole.health.reference.frames) == ((), None, 2)
    items = aws.dynamodb.query(
        TableName=names.state_table,
        KeyConditionExpression="camera_id = :c",
        ExpressionAttributeValues={":c": {"S": "cam-rs"}},
    )["Items"]
    keys = sorted(item["item"]["S"] for item in items)
    assert [key for key in keys if key.startswith("state")] == [
        "state",
        "state#q1",
        "state#q2",
        "state#q3",
        "state#q4",
    ]
    q2_events = sorted((item["item"]["S"], item["state"]["S"], item["region"]["S"], item["event_id"]["S"])
                       for item in items if item["item"]["S"].startswith("event#q2#"))  # fmt: skip
    assert q2_events == [
        ("event#q2#000000001", "free", "q2", "cam-rs#q2#1"),
        ("event#q2#000000002", "occupied", "q2", "cam-rs#q2#2"),
    ]


def test_a_doubtful_region_is_queued_for_review_as_itself(aws, regions_app, frames):
    review_table = unique_name("camsort-review-regions")
    create_review_table(aws.dynamodb, review_table)
    set_regions(aws, "cam-rv", REGIONS)
    record = frames.put("frames/cam-rv/0.jpg", quadrants())
    app = regions_app(review_table=review_table)

    assert handle(sqs_event(("m-1", [record])), lambda: app) == {"batchItemFailures": []}

    (entry,) = entries(aws, review_table)  # q4 is grey: unknown; the other regions are sure
    etag = record["s3"]["object"]["eTag"]
    assert (entry["region"]["S"], entry["model_name"]["S"], entry["review_reason"]["S"]) == (
        "q4",
        "default",
        "unknown",
    )
    assert entry["object_version"]["S"] == region_sort_key(etag, "q4") and entry["camera_id"]["S"] == "cam-rv"
    assert quota(aws, review_table, "cam-rv") == 1


def test_the_adapter_reads_by_etag_from_s3(aws):
    objects = CameraConfigObjects(aws.s3, aws.bucket)
    assert objects.fetch("cam-none").status == "absent"
    set_regions(aws, "cam-etag", REGIONS)
    found = objects.fetch("cam-etag")
    assert (found.status, json.loads(found.body)) == ("found", REGIONS)
    assert objects.fetch("cam-etag", found.etag).status == "unchanged"  # S3's 304, no body
    set_regions(aws, "cam-etag", {"regions": []})
    assert objects.fetch("cam-etag", found.etag).status == "found"


def test_a_region_named_default_carries_the_cameras_health_in_its_own_state_write(aws, regions_app, frames):
    names = StackNames.for_stage(f"rd-{uuid.uuid4().hex[:8]}")
    create_state_resources(aws.endpoint_url, names)
    set_regions(aws, "cam-rd", {"regions": [{"name": "default", "box": [0.05, 0.05, 0.45, 0.45]}]})
    app = regions_app(state_table=names.state_table)
    records = [
        frames.put(f"frames/cam-rd/20261122T12000{second}000Z.jpg", quadrants()) for second in range(2)
    ]
    assert handle(sqs_event(("m-1", records)), lambda: app) == {"batchItemFailures": []}

    etag = records[0]["s3"]["object"]["eTag"]
    assert "health" not in item_of(
        aws, "frames/cam-rd/0.jpg".replace("0.jpg", "20261122T120000000Z.jpg"), etag
    )
    region = ResultsTable(aws.table, aws.dynamodb).get(
        f"{aws.bucket}/frames/cam-rd/20261122T120000000Z.jpg", region_sort_key(etag, "default")
    )
    assert set(region["health"]) == {"b", "c", "s", "f"}  # the whole frame's, not the region's crop
    state = CameraStates(names.state_table, aws.dynamodb, SmoothingConfig()).load("cam-rd")
    # One item for the region and the health: the window holds its answers, the health both frames.
    assert (state.state, len(state.window), state.health.reference.frames) == ("bus", 2, 2)
    items = aws.dynamodb.query(
        TableName=names.state_table,
        KeyConditionExpression="camera_id = :c",
        ExpressionAttributeValues={":c": {"S": "cam-rd"}},
    )["Items"]
    assert [item["item"]["S"] for item in items if item["item"]["S"].startswith("state")] == ["state"]
