"""Shadow scoring in the function, on a moto server, with two tiny real models.

The candidate is the tiny model with its labels rotated (red -> car instead of bus), so every
coloured frame gets a different candidate answer and the records are easy to tell apart.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from functions import wiring
from functions.frames.model import ModelSession
from functions.frames.shadow import ShadowScorer, is_sampled
from functions.handler import lambda_handler
from functions.settings import Settings
from functions.stores.results import ResultsTable
from tests.fixtures.tiny_model import write_tiny_model
from tests.functional import test_handler
from tests.functional.test_handler import CONTEXT, GREEN, RED, Frames, item_of, jpeg, sqs_event, tags_of

make_app = test_handler.make_app  # the handler tests' app fixture, shared
CANDIDATE_LABELS = ["car", "empty", "bus"]  # red -> car, green -> empty


def write_candidate(directory: Path) -> Path:
    write_tiny_model(directory, labels=CANDIDATE_LABELS)
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["model_version"] = "tiny-candidate"
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return directory


@pytest.fixture(scope="module")
def candidate_dir(tmp_path_factory) -> Path:
    return write_candidate(tmp_path_factory.mktemp("candidate"))


@pytest.fixture(scope="module")
def candidate(candidate_dir) -> ModelSession:
    return ModelSession.open(str(candidate_dir), threads=1)


class Draws:
    def __init__(self, *values: float):
        self.values = list(values)

    def __call__(self) -> float:
        return self.values.pop(0)


@pytest.fixture
def shadow_app(request, candidate):
    def install(*, rate: float = 1.0, draws=(0.0,), model=None):
        # Tags on: the shadow answer must never touch the live tags, which needs tags to exist.
        app = request.getfixturevalue("make_app")(write_tags=True)
        app.shadow = ShadowScorer(model=model or candidate, sample_rate=rate, draw=Draws(*draws))
        wiring.install_app(app)
        return app

    yield install
    wiring.install_app(None)


def test_sampling_rule():
    assert is_sampled(0.1, 0.05) and not is_sampled(0.1, 0.1) and not is_sampled(0.0, 0.0)
    assert is_sampled(1.0, 0.999)


def test_sampled_invocation_records_the_candidate_beside_the_live_result(aws, shadow_app, candidate):
    shadow_app()
    frames = Frames(aws.s3, aws.bucket)
    red = frames.put("frames/cam-01/red.jpg", jpeg(RED))
    green = frames.put("frames/cam-01/green.jpg", jpeg(GREEN))

    assert lambda_handler(sqs_event(("m-1", [red, green])), CONTEXT) == {"batchItemFailures": []}

    item = item_of(aws, "frames/cam-01/red.jpg", red["s3"]["object"]["eTag"])
    assert (item["label"], item["model_version"]) == ("bus", "tiny-1")
    assert (item["shadow_label"], item["shadow_model_version"]) == ("car", "tiny-candidate")
    assert item["shadow_model_sha256"] == candidate.sha256
    assert set(item["shadow_probabilities"]) == set(CANDIDATE_LABELS)
    assert item["shadow_confidence"] == item["shadow_probabilities"]["car"] > 0.99
    assert item["shadow_ms_per_frame"] >= 0
    assert item_of(aws, "frames/cam-01/green.jpg", green["s3"]["object"]["eTag"])["shadow_label"] == "empty"
    # The candidate never tags.
    assert tags_of(aws, "frames/cam-01/red.jpg")["camsort-label"] == "bus"
    assert not [k for k in tags_of(aws, "frames/cam-01/red.jpg") if "shadow" in k or "candidate" in k]


def test_unsampled_invocation_runs_no_candidate(aws, shadow_app):
    shadow_app(rate=0.25, draws=(0.25,))
    record = Frames(aws.s3, aws.bucket).put("frames/cam-01/red.jpg", jpeg(RED))

    assert lambda_handler(sqs_event(("m-1", [record])), CONTEXT) == {"batchItemFailures": []}
    item = item_of(aws, "frames/cam-01/red.jpg", record["s3"]["object"]["eTag"])
    assert item["label"] == "bus" and not [k for k in item if k.startswith("shadow_")]


class BrokenSession:
    def run(self, *_args, **_kwargs):
        raise RuntimeError("candidate kernel crashed")


def test_a_failing_candidate_never_fails_the_live_path(aws, shadow_app, candidate):
    shadow_app(model=dataclasses.replace(candidate, session=BrokenSession()))
    record = Frames(aws.s3, aws.bucket).put("frames/cam-01/red.jpg", jpeg(RED))

    assert lambda_handler(sqs_event(("m-1", [record])), CONTEXT) == {"batchItemFailures": []}
    item = item_of(aws, "frames/cam-01/red.jpg", record["s3"]["object"]["eTag"])
    assert item["status"] == "ok" and item["label"] == "bus"
    assert not [k for k in item if k.startswith("shadow_")]
    assert tags_of(aws, "frames/cam-01/red.jpg")["camsort-label"] == "bus"


def test_candidate_with_a_wrong_pin_is_not_loaded_and_live_runs(aws, candidate_dir, tiny_model, tmp_path):
    settings = dataclasses.replace(
        Settings(model_uri="unused", results_table=aws.table),
        candidate_model_uri=str(candidate_dir),
        candidate_model_sha256="0" * 64,
        shadow_sample_rate=1.0,
    )
    app = wiring.build_app(settings, s3_client=aws.s3, dynamodb_client=aws.dynamodb, model=tiny_model)
    assert app.shadow is None
    pinned = dataclasses.replace(
        settings,
        candidate_model_sha256=json.loads((candidate_dir / "manifest.json").read_text())["model_sha256"],
    )
    app = wiring.build_app(pinned, s3_client=aws.s3, dynamodb_client=aws.dynamodb, model=tiny_model)
    assert app.shadow is not None and app.shadow.model.manifest.model_version == "tiny-candidate"


def test_shadow_answer_attaches_only_to_the_result_it_saw(aws):
    table = ResultsTable(aws.table, aws.dynamodb)
    table.put_result({"object_id": "b/k", "object_version": "v1", "sequencer": "0002", "label": "bus"})
    assert (
        table.record_shadow("b/k", "v1", "0001", {"shadow_label": "car"}) is False
    )  # a newer event wrote it
    assert table.record_shadow("b/k", "v9", "0002", {"shadow_label": "car"}) is False  # no such result
    assert table.record_shadow("b/k", "v1", "0002", {"shadow_label": "car"}) is True
    assert table.get("b/k", "v1")["shadow_label"] == "car"


def test_compare_reads_the_shadow_results(aws, shadow_app, tmp_path):
    from click.testing import CliRunner

    from camsort.cli import main
    from tests.functional.test_handler import BLUE, GREY

    shadow_app(draws=(0.0, 0.0))
    frames = Frames(aws.s3, aws.bucket)
    first = [
        frames.put(f"frames/cam-01/{n}.jpg", jpeg(c)) for n, c in [("r", RED), ("g", GREEN), ("k", GREY)]
    ]
    second = [frames.put(f"frames/cam-02/{n}.jpg", jpeg(c)) for n, c in [("b", BLUE), ("k", GREY)]]
    assert lambda_handler(sqs_event(("m-1", first)), CONTEXT) == {"batchItemFailures": []}
    assert lambda_handler(sqs_event(("m-2", second)), CONTEXT) == {"batchItemFailures": []}
    base = [
        "compare",
        "--since",
        "1h",
        "--endpoint-url",
        aws.endpoint_url,
        "--table",
        aws.table,
        "--review-table",
        "x",
    ]

    result = CliRunner().invoke(main, [*base, "--json", "--html", str(tmp_path / "compare.html")])

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    # Rotated labels: red bus->car, green car->empty, blue empty->bus; grey is unknown for both.
    assert report["confusion"] == {
        "bus": {"car": 1},
        "car": {"empty": 1},
        "empty": {"bus": 1},
        "unknown": {"unknown": 2},
    }
    assert (report["frames"], report["agreeing"], report["agreement"]) == (5, 2, 0.4)
    assert report["per_camera"]["cam-02"] == {"frames": 2, "agreeing": 1, "agreement": 0.5}
    assert report["candidate_version"] == "tiny-candidate" and report["live_versions"] == ["tiny-1"]
    assert {f["key"] for f in report["worst"][:3]} == {
        "frames/cam-01/r.jpg",
        "frames/cam-01/g.jpg",
        "frames/cam-02/b.jpg",
    }
    page = (tmp_path / "compare.html").read_text()
    assert page.count("data:image/jpeg;base64,") == 3  # thumbnails of the three disagreements

    table = CliRunner().invoke(main, [*base, "--camera", "cam-01"])
    assert table.exit_code == 0, table.output
    assert "confusion" in table.output and "66.7%" not in table.output and "33.3%" in table.output
