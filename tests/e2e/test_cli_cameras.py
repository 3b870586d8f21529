"""`camsort cameras` / `camsort events` through click's runner, against moto's server."""

from __future__ import annotations

import json
import uuid

import pytest
from click.testing import CliRunner

from camsort.cli import main
from functions.state.camera_state import CameraStates
from functions.state.smoothing import IDLE, Rule, SmoothingConfig
from infra.deploy.topology import StackNames
from infra.local.stack import create_state_resources
from tests.e2e.test_camera_state import frame
from tests.fixtures.aws import aws_client

pytestmark = pytest.mark.e2e


@pytest.fixture
def filled(moto_server):
    """Two cameras: cam-03 saw a bus come and go, cam-04 has a car now."""
    names = StackNames.for_stage(f"cli-{uuid.uuid4().hex[:8]}")
    create_state_resources(moto_server.endpoint_url, names)
    states = CameraStates(
        names.state_table,
        aws_client("dynamodb", moto_server.endpoint_url),
        SmoothingConfig(default=Rule(mode="k_of_n", k=2, n=3)),
    )
    for second, label in enumerate(["empty", "bus", "bus", "bus", "empty", "empty", "empty"]):
        states.observe("cam-03", [frame(second * 60, label)])
    for second in range(3):
        states.observe("cam-04", [frame(second, "car", 0.75, camera="cam-04")])
    return ["--endpoint-url", moto_server.endpoint_url, "--table", names.table]


def run(*args: str) -> str:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_cameras_json_and_table(filled):
    cameras = json.loads(run("cameras", *filled, "--json"))
    assert [(c["camera_id"], c["state"], c["since"]) for c in cameras] == [
        ("cam-03", IDLE, frame(240, "x").captured_at),
        ("cam-04", "car", frame(0, "x").captured_at),
    ]
    assert cameras[1]["last_frame"] == {
        "t": frame(2, "x").captured_at,
        "k": frame(2, "car", camera="cam-04").key,
        "l": "car",
        "c": 0.75,
    }
    assert "window" not in cameras[0]  # bookkeeping stays out of what users read
    table = run("cameras", *filled)
    assert "cam-03" in table and "cam-04" in table and "0002.00.jpg" in table


def test_events_in_a_range_json_and_table(filled):
    every = json.loads(run("events", "--camera", "cam-03", *filled, "--json"))
    assert [(e["previous_state"], e["state"]) for e in every] == [(IDLE, IDLE), (IDLE, "bus"), ("bus", IDLE)]
    bus = every[1]
    assert (bus["start"], bus["end"], bus["frame_count"]) == (
        frame(60, "x").captured_at,
        frame(180, "x").captured_at,
        3,
    )
    # only what overlaps 12:03:30 .. 12:05:00: the bus (ended 12:03) is out, the "none" after it in
    later = json.loads(
        run(
            "events",
            "--camera",
            "cam-03",
            *filled,
            "--since",
            "2026-11-22T12:03:30Z",
            "--until",
            "2026-11-22T12:05:00Z",
            "--json",
        )
    )
    assert [e["state"] for e in later] == [IDLE]
    assert [e["event_id"] for e in later] == ["cam-03#3"]
    # the last hour (long after these frames): only the event still open overlaps it
    recent = json.loads(run("events", "--camera", "cam-03", *filled, "--last", "1h", "--json"))
    assert [(e["event_id"], e.get("end")) for e in recent] == [("cam-03#3", None)]
    table = run("events", "--camera", "cam-03", *filled, "--since", "2026-11-22T00:00:00Z")
    assert "bus" in table and "(now)" in table


def test_events_errors_are_one_line(filled):
    result = CliRunner().invoke(
        main, ["events", "--camera", "c", *filled, "--last", "1h", "--since", "2026-01-01"]
    )
    assert result.exit_code != 0 and "give one of them" in result.output
    result = CliRunner().invoke(main, ["cameras", *filled[:2], "--table", "camsort-results-nosuchstage"])
    assert (
        result.exit_code != 0 and "camsort-state-nosuchstage: DynamoDB Scan: no such table" in result.output
    )


def test_a_camera_with_regions_shows_each_regions_state_and_events(moto_server):
    names = StackNames.for_stage(f"cli-{uuid.uuid4().hex[:8]}")
    create_state_resources(moto_server.endpoint_url, names)
    states = CameraStates(
        names.state_table,
        aws_client("dynamodb", moto_server.endpoint_url),
        SmoothingConfig(default=Rule(k=1)),
    )
    for second, (bay1, bay2) in enumerate([("empty", "car"), ("car", "car")]):
        states.observe("cam-09", [frame(second, bay1, camera="cam-09")], region="bay1")
        states.observe("cam-09", [frame(second, bay2, camera="cam-09")], region="bay2")
    target = ["--endpoint-url", moto_server.endpoint_url, "--table", names.table]

    cameras = json.loads(run("cameras", *target, "--json"))
    assert [(c["camera_id"], c["region"], c["state"]) for c in cameras] == [
        ("cam-09", "bay1", "car"),
        ("cam-09", "bay2", "car"),
    ]
    assert "cam-09 / bay1" in run("cameras", *target)
    events = json.loads(run("events", "--camera", "cam-09", *target, "--json"))
    assert [(e["region"], e["event_id"], e["previous_state"], e["state"]) for e in events] == [
        ("bay1", "cam-09#bay1#1", IDLE, IDLE),
        ("bay1", "cam-09#bay1#2", IDLE, "car"),
        ("bay2", "cam-09#bay2#1", IDLE, "car"),
    ]
    assert "bay2" in run("events", "--camera", "cam-09", *target)  # the table's region column
