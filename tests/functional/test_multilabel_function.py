"""The function with a multi-label model (tiny real ONNX, moto over HTTP): label sets in the
result item, in the tags and in Batch Operations' result strings; the builder's tag limits."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from functions import wiring
from functions.frames.decision import LabelSetDecision, decide_labels
from functions.frames.outputs import MAX_TAG_VALUE, answer_tags, label_text, labels_tag_value
from functions.handler import lambda_handler
from functions.settings import Settings
from tests.functional.test_handler import (
    CONTEXT,
    TIME_PATTERN,
    Frames,
    item_of,
    jpeg,
    sqs_event,
    tags_of,
)

YELLOW, BLACK, GREY, RED = (255, 255, 0), (0, 0, 0), (100, 100, 100), (255, 0, 0)


@pytest.fixture
def app(aws, tiny_multilabel_model):
    settings = dataclasses.replace(
        Settings(model_uri="unused: model injected", results_table=aws.table),
        key_pattern=TIME_PATTERN,
        write_tags=True,  # a tagging deployment: the label set's tags are under test
    )
    built = wiring.build_app(
        settings, s3_client=aws.s3, dynamodb_client=aws.dynamodb, model=tiny_multilabel_model
    )
    wiring.install_app(built)
    yield built
    wiring.install_app(None)


def test_result_items_carry_the_label_set_and_every_probability(aws, app):
    frames = Frames(aws.s3, aws.bucket)
    keys = {
        "frames/cam-01/a.jpg": (YELLOW, ["bus", "car"]),
        "frames/cam-01/b.jpg": (BLACK, ["night"]),
        "frames/cam-01/c.jpg": (GREY, []),  # the empty set is an answer
        "frames/cam-01/d.jpg": (RED, ["bus"]),
    }
    records = [frames.put(key, jpeg(colour), tags="owner=gate") for key, (colour, _) in keys.items()]
    assert lambda_handler(sqs_event(("m-1", records)), CONTEXT) == {"batchItemFailures": []}
    for record, (key, (_, expected)) in zip(records, keys.items(), strict=True):
        item = item_of(aws, key, record["s3"]["object"]["eTag"])
        assert item["status"] == "ok"
        assert item["labels"] == expected
        assert "label" not in item  # a multi-label item has a set, not one label
        assert set(item["probabilities"]) == {"bus", "car", "night"}
        assert item["confidence"] == max(item["probabilities"].values())
        assert all(isinstance(p, Decimal) for p in item["probabilities"].values())
        tags = tags_of(aws, key)
        assert tags["camsort-labels"] == "+".join(expected)
        assert tags["owner"] == "gate" and tags["camsort-model-version"] == "tiny-ml-1"
        assert "camsort-label" not in tags
    # rows do not sum to one: independent probabilities
    yellow = item_of(aws, "frames/cam-01/a.jpg", records[0]["s3"]["object"]["eTag"])
    assert sum(yellow["probabilities"].values()) > Decimal("1.5")


def test_batch_operations_result_string_names_the_set(aws, app):
    from functions.frames.classify import FrameOutcome
    from functions.handler import _task_result

    outcome = FrameOutcome(frame=None, status="ok", labels=["bus", "car"], confidence=0.97)
    assert _task_result(outcome) == ("Succeeded", "ok: {bus, car} (0.9700)")


def decision(labels: list[str], probabilities: dict[str, float]) -> LabelSetDecision:
    top = max(probabilities, key=probabilities.get)
    return LabelSetDecision(labels, probabilities[top], top, probabilities)


def test_tags_stay_within_s3_limits_for_many_long_labels():
    names = [f"attribute-{i:02d}-" + "x" * 20 for i in range(20)]  # 20 labels of 32 chars
    probabilities = {name: 0.5 + i / 100 for i, name in enumerate(names)}
    tags = answer_tags(decision(names, probabilities), "v1")
    assert len(tags) == 3  # of S3's 10 per object: the uploader keeps 7
    value = tags["camsort-labels"]
    assert len(value) <= MAX_TAG_VALUE and value.endswith("+...")
    kept = value[: -len("+...")].split("+")
    assert kept[0] == names[-1]  # the most probable labels are the ones kept
    assert len(kept) == (MAX_TAG_VALUE - 4 + 1) // 33


def test_tag_characters_are_those_s3_allows():
    assert (
        labels_tag_value(decision(["bus", "rain,heavy"], {"bus": 0.9, "rain,heavy": 0.8})) == "bus+rain_heavy"
    )
    assert labels_tag_value(decision([], {"bus": 0.1})) == ""


def test_single_label_items_keep_their_shape():
    assert label_text({"label": "bus"}) == "bus"
    assert label_text({"labels": ["bus", "car"]}) == "{bus, car}"
    assert label_text({"labels": []}) == "{}"


def test_decide_labels_thresholds_each_label_independently():
    decisions = decide_labels(
        [[0.9, 0.2, 0.6], [0.1, 0.1, 0.1]], ["a", "b", "c"], {"a": 0.5, "b": 0.1, "c": 0.7}
    )
    assert decisions[0].labels == ["a", "b"] and decisions[0].top_label == "a"
    assert decisions[1].labels == ["b"]  # 0.1 >= 0.1
    with pytest.raises(ValueError):
        decide_labels([[0.1, 0.2]], ["a", "b", "c"], {"a": 0.5, "b": 0.5, "c": 0.5})
