"""Batch Operations userArguments: parsing and the sort key of another model version's result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.archive.jobs import JobArguments, JobArgumentsError, parse_job_arguments
from functions.frames.events import parse_event
from functions.stores.results import result_sort_key

EVENTS = Path(__file__).resolve().parents[1] / "events"


def test_schema_2_user_arguments_reach_the_parsed_event_and_schema_1_has_none():
    v2 = json.loads((EVENTS / "batch_operations_v2.json").read_text())
    v2["job"]["userArguments"] = {"mode": "classify", "modelVersion": "m-2"}
    assert parse_event(v2).batch.user_arguments == {"mode": "classify", "modelVersion": "m-2"}
    v1 = json.loads((EVENTS / "batch_operations_v1.json").read_text())
    assert parse_event(v1).batch.user_arguments == {}


def test_arguments_round_trip_through_user_arguments():
    arguments = JobArguments(model_version="m-2", model_uri="s3://b/models/m-2/", model_sha256="ab" * 32)
    assert parse_job_arguments(arguments.to_user_arguments()) == arguments
    assert parse_job_arguments({}) == JobArguments()
    assert parse_job_arguments({"reason": "backfill"}) == JobArguments()  # the recorded event's
    named = JobArguments(
        model_version="v2", model_uri="s3://b/models/bay/v2/", model_sha256="cd" * 32, model_name="bay"
    )
    assert named.to_user_arguments()["modelName"] == "bay"
    assert parse_job_arguments(named.to_user_arguments()) == named
    assert "modelName" not in arguments.to_user_arguments()  # the default model's jobs are as before


def test_a_named_models_job_is_refused_until_its_regions_are_run():
    from functions.archive.jobs import job_app

    named = JobArguments(
        model_version="v2", model_uri="s3://b/models/bay/v2/", model_sha256="cd" * 32, model_name="bay"
    )
    with pytest.raises(
        JobArgumentsError, match="named model bay: this function runs job models on the whole frame only"
    ):
        job_app(object(), named)  # refused before the App is touched


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"mode": "sharpen"}, "mode='sharpen'"),
        ({"modelSha256": "XYZ"}, "not a lower-case hex sha256"),
        ({"colour": "red"}, "['colour'] are not understood"),
    ],
)
def test_bad_arguments_name_the_argument(arguments, message):
    with pytest.raises(JobArgumentsError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_job_arguments(arguments)


def test_live_key_is_unchanged_and_another_version_sits_beside_it():
    assert result_sort_key("3/L4kqtJlcp") == "3/L4kqtJlcp"
    assert result_sort_key("3/L4kqtJlcp", None) == "3/L4kqtJlcp"
    assert (
        result_sort_key("d41d8cd98f00b204e9800998ecf8427e", "m-2") == "d41d8cd98f00b204e9800998ecf8427e#m-2"
    )


def test_manifest_interleaves_cameras_and_keeps_each_cameras_order():
    from datetime import UTC, datetime

    from infra.ops.backfill_manifest import Candidate, interleave_by_folder

    def c(key):
        return Candidate("b", key, None, "e", datetime(2026, 11, 1, tzinfo=UTC), 1)

    keys = [
        "frames/a/1.jpg",
        "frames/a/2.jpg",
        "frames/a/3.jpg",
        "frames/b/1.jpg",
        "frames/c/1.jpg",
        "frames/c/2.jpg",
    ]
    assert [x.key for x in interleave_by_folder([c(k) for k in keys], "frames/")] == [
        "frames/a/1.jpg",
        "frames/b/1.jpg",
        "frames/c/1.jpg",
        "frames/a/2.jpg",
        "frames/c/2.jpg",
        "frames/a/3.jpg",
    ]
    assert interleave_by_folder([], "frames/") == []
