"""Camera state is configuration: off unless the stage names a state table."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from functions import env
from functions.errors import ConfigurationError
from functions.settings import load_settings
from functions.state.smoothing import Rule
from functions.wiring import build_app

BASE = {env.MODEL_URI: "/models/x", env.RESULTS_TABLE: "results", env.MODEL_SHA256: "0" * 64}


class _Clients:
    """Stands in for boto3 clients: build_app only stores them."""


# build_app reads only the model's precision (the int8 kernel check at cold start).
MODEL = SimpleNamespace(manifest=SimpleNamespace(precision="fp32"))


def test_state_is_off_unless_a_state_table_is_named():
    settings = load_settings(BASE)
    assert (settings.state_table, settings.event_bus, settings.smoothing) == (None, None, None)
    app = build_app(settings, s3_client=_Clients(), dynamodb_client=_Clients(), model=MODEL)
    assert app.camera_state is None


def test_state_table_bus_and_rule_from_the_environment():
    settings = load_settings(
        BASE
        | {
            env.STATE_TABLE: "state",
            env.EVENT_BUS: "camsort.events",
            env.SMOOTHING: '{"default": {"mode": "consecutive", "k": 4}, "cameras": {"cam-9": {"k": 2}}}',
        }
    )
    app = build_app(
        settings, s3_client=_Clients(), dynamodb_client=_Clients(), model=MODEL, events_client=_Clients()
    )
    assert app.camera_state.table_name == "state"
    assert app.camera_state.publisher.bus_name == "camsort.events"
    assert app.camera_state.smoothing.rule_for("cam-1") == Rule(mode="consecutive", k=4)
    assert app.camera_state.smoothing.rule_for("cam-9") == Rule(mode="consecutive", k=2)


def test_a_bad_rule_fails_at_start_up_naming_the_variable():
    with pytest.raises(ConfigurationError, match=env.SMOOTHING):
        load_settings(BASE | {env.SMOOTHING: '{"default": {"k": 0}}'})
