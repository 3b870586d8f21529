"""Batch Operations userArguments: parsing, the App a job runs with and the sort key of another model
version's result (the default model's or a named model's)."""

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
    assert result_sort_key("3/L4kqtJlcp", "m-2", "default") == "3/L4kqtJlcp#m-2"


def test_a_named_models_version_has_its_own_key_apart_from_the_default_models_same_version():
    from functions.frames.outputs import is_region_item, region_sort_key

    named = result_sort_key("3/L4kqtJlcp", "v2", "bay")
    assert named == "3/L4kqtJlcp#bay/v2"
    assert result_sort_key("3/L4kqtJlcp", None, "bay") == "3/L4kqtJlcp"  # no version: the live key
    # The default model's v2 backfill of a regions camera writes <ov>#v2#region#<name> for every
    # region, bay's included: a named v2 never lands on those.
    default_region = region_sort_key(result_sort_key("3/L4kqtJlcp", "v2"), "q2")
    named_region = region_sort_key(named, "q2")
    assert (default_region, named_region) == ("3/L4kqtJlcp#v2#region#q2", "3/L4kqtJlcp#bay/v2#region#q2")
    # Region items of a named job are region items, whose commit item is the part before #region#.
    assert is_region_item({"region": "q2", "object_version": named_region})
    assert named_region.split("#region#")[0] == named


# --- job_app: the App a job's tasks run with -----------------------------------------------------

LIVE_SHA, JOB_SHA = "aa" * 32, "cd" * 32
REGIONS = {
    "regions": [
        {"name": "q1", "box": [0.0, 0.0, 0.5, 0.5]},
        {"name": "q2", "box": [0.5, 0.0, 1.0, 0.5], "model": "bay"},
        {"name": "gate", "box": [0.0, 0.5, 0.5, 1.0], "model": "gate"},
        {"name": "q3", "box": [0.5, 0.5, 1.0, 1.0], "model": "bay"},
    ]
}


def stub_model(version: str, sha256: str):
    from types import SimpleNamespace

    return SimpleNamespace(
        manifest=SimpleNamespace(model_version=version, model_sha256=sha256), sha256=sha256
    )


def app_with_regions(configs: dict[str, dict]):
    from functions.frames.shadow import ShadowScorer
    from functions.settings import Settings
    from functions.stores.camera_configs import CameraConfigs, ConfigObject
    from functions.wiring import App

    def fetch(camera_id: str, etag: str | None = None) -> ConfigObject:
        if camera_id not in configs:
            return ConfigObject("absent")
        return ConfigObject("found", "e1", json.dumps(configs[camera_id]).encode())

    known = {"default", "bay", "gate"}
    return App(
        settings=Settings(model_uri="s3://b/models/v1/", results_table="t", write_tags=True),
        store=None,  # type: ignore[arg-type]
        table=None,  # type: ignore[arg-type]
        model=stub_model("v1", LIVE_SHA),  # type: ignore[arg-type]
        shadow=ShadowScorer(model=stub_model("v9", "ee" * 32), sample_rate=1.0),  # type: ignore[arg-type]
        named_models={"bay": stub_model("bay-1", "bb" * 32), "gate": stub_model("gate-1", "cc" * 32)},  # type: ignore[dict-item]
        named_shadows={"bay": ShadowScorer(model=stub_model("bay-9", "ff" * 32), sample_rate=1.0)},  # type: ignore[arg-type]
        camera_configs=CameraConfigs(fetch, ttl_seconds=60, known_models=known),
    )


def named_arguments(**overrides) -> JobArguments:
    values = {
        "model_version": "bay-2",
        "model_uri": "s3://b/models/bay/bay-2/",
        "model_sha256": JOB_SHA,
        "model_name": "bay",
    }
    return JobArguments(**(values | overrides))


def test_a_named_models_job_runs_its_version_on_that_models_regions_only():
    from functions.archive.jobs import job_app

    app = app_with_regions({"cam-r": REGIONS, "cam-g": {"regions": [REGIONS["regions"][2]]}})
    opened = []

    def open_model(uri, sha256, _app):
        opened.append((uri, sha256))
        return stub_model("bay-2", sha256)

    job = job_app(app, named_arguments(model_uri="s3://b/models/bay/bay-2/unit-1/"), open_model)
    assert opened == [("s3://b/models/bay/bay-2/unit-1/", JOB_SHA)]
    assert job.named_models["bay"].manifest.model_version == "bay-2"
    assert job.models["default"] is app.model and job.named_models["gate"] is app.named_models["gate"]
    assert (job.result_model_version, job.result_model_name) == ("bay-2", "bay")
    # Beside the live results, never on them: no tags, no shadow answers (state, events and review
    # are off for any job version: result_model_version).
    assert job.settings.write_tags is False and job.shadow is None and job.named_shadows == {}
    assert job.result_key("3/L4kqtJlcp") == "3/L4kqtJlcp#bay/bay-2"
    # The camera's configuration read as the live path reads it, narrowed to bay's regions.
    assert [r.name for r in job.regions_for("cam-r").regions] == ["q2", "q3"]
    assert job.regions_for("cam-g").regions == ()  # a camera whose regions bay does not answer
    assert job.regions_for("cam-none").regions == ()
    # The live App is untouched.
    assert [r.name for r in app.regions_for("cam-r").regions] == ["q1", "q2", "gate", "q3"]
    assert app.named_models["bay"].manifest.model_version == "bay-1" and app.result_key("x") == "x"
    # Once per container: the next invocation of the job reuses the session.
    job_app(app, named_arguments(model_uri="s3://b/models/bay/bay-2/unit-1/"), open_model)
    assert len(opened) == 1


def test_the_default_models_job_is_unchanged_by_named_jobs():
    from functions.archive.jobs import job_app

    app = app_with_regions({"cam-r": REGIONS})
    assert job_app(app, JobArguments()) is app
    job = job_app(
        app,
        JobArguments(model_version="v2", model_uri="s3://b/models/v2/unit-2/", model_sha256=JOB_SHA),
        lambda uri, sha256, _app: stub_model("v2", sha256),
    )
    assert (job.result_model_version, job.result_model_name, job.result_key("o")) == ("v2", "default", "o#v2")
    assert job.model.manifest.model_version == "v2" and job.named_models == app.named_models
    # Every region of the camera, as before (bay's and gate's answered by their live models).
    assert [r.name for r in job.regions_for("cam-r").regions] == ["q1", "q2", "gate", "q3"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model_name": "dock"}, "named model dock, which this deployment does not carry"),
        ({"model_version": None}, "names the model bay but no modelVersion"),
        ({"model_sha256": None}, "need modelUri and modelSha256"),
        (
            {"mode": "featurize", "features_uri": "s3://b/features/"},
            "a named model's job classifies its regions",
        ),
    ],
)
def test_a_named_job_that_cannot_be_honoured_is_refused(overrides, message):
    from functions.archive.jobs import job_app

    def never(*_args):
        raise AssertionError("no model is opened for a refused job")

    with pytest.raises(JobArgumentsError, match=message):
        job_app(app_with_regions({}), named_arguments(**overrides), never)


def test_a_named_job_refuses_a_model_whose_manifest_names_another_version():
    from functions.archive.jobs import job_app

    with pytest.raises(JobArgumentsError, match="manifest says model version bay-3, the job asks for bay-2"):
        job_app(
            app_with_regions({}),
            named_arguments(model_uri="s3://b/models/bay/bay-2/unit-3/"),
            lambda uri, sha256, _app: stub_model("bay-3", sha256),
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
