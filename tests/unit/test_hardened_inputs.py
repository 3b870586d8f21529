"""Inputs read strictly: the HTTP ``write`` flag, a key's capture time against the upload, and
model pins that may not be empty (at cold start and in a stage's deploy file)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from functions import env
from functions.errors import ConfigurationError
from functions.frames.keys import is_ahead
from functions.http_api import handle_http, parse_write
from functions.settings import load_settings
from functions.state.outbox import STALE_AFTER, STALE_AFTER_TIME, due, queued
from infra.ops.promote import DeployConfig, ModelPin

UPLOADED = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
SKEW = timedelta(minutes=5)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("true", True), ("false", False), ("FALSE", False), (" True ", True)],
)
def test_write_is_a_boolean_or_the_words_true_and_false(value, expected):
    assert parse_write(value, '"write"') is expected


@pytest.mark.parametrize("value", ["yes", "1", "", "no", 1, 0, None, [], {"x": 1}, "tru"])
def test_anything_else_is_refused_never_read_as_true(value):
    with pytest.raises(ValueError, match="must be true or false"):
        parse_write(value, '"write"')


def test_a_bad_write_in_the_query_is_a_400_before_the_function_sets_up():
    event = {
        "version": "2.0",
        "rawQueryString": "write=maybe",
        "requestContext": {"http": {"method": "POST"}, "requestId": "r-1"},
        "body": "",
    }

    def never():  # the answer must not need the model or any client
        raise AssertionError("get_app called")

    response = handle_http(event, never)
    assert response["statusCode"] == 400
    assert "?write= must be true or false, not 'maybe'" in response["body"]


@pytest.mark.parametrize(
    ("claimed", "distrusted"),
    [
        (UPLOADED - timedelta(hours=3), False),  # captured long before the upload: buffered
        (UPLOADED + timedelta(minutes=4, seconds=59), False),  # within the skew: clocks differ
        (UPLOADED + SKEW, False),  # exactly at the skew: still trusted
        (UPLOADED + SKEW + timedelta(milliseconds=1), True),
        (UPLOADED + timedelta(days=365), True),  # a camera clock a year ahead
    ],
)
def test_a_capture_time_is_trusted_up_to_the_skew_after_the_upload(claimed, distrusted):
    assert is_ahead(claimed, UPLOADED, SKEW) is distrusted


def test_the_skew_is_read_from_the_environment():
    base = {env.MODEL_URI: "s3://m/", env.RESULTS_TABLE: "t", env.MODEL_SHA256: "a" * 64}
    assert load_settings(base).capture_skew_seconds == env.DEFAULT_CAPTURE_SKEW_SECONDS == 300
    assert load_settings(base | {env.CAPTURE_SKEW_SECONDS: "0"}).capture_skew_seconds == 0
    with pytest.raises(ConfigurationError, match=env.CAPTURE_SKEW_SECONDS):
        load_settings(base | {env.CAPTURE_SKEW_SECONDS: "-1"})


@pytest.mark.parametrize("pin", [None, "", "   "])
def test_an_empty_or_missing_pin_stops_the_cold_start(pin):
    environ = {env.MODEL_URI: "s3://m/", env.RESULTS_TABLE: "t"}
    if pin is not None:
        environ[env.MODEL_SHA256] = pin
    with pytest.raises(ConfigurationError, match=f"{env.MODEL_SHA256} is empty or not set"):
        load_settings(environ)


def test_a_deploy_file_without_a_pin_is_refused_where_it_is_read_and_written():
    data = DeployConfig(live=ModelPin("v1", "s3://b/models/v1/", "a" * 64)).to_file()
    for missing in ({k: v for k, v in data.items() if k != "modelSha256"}, data | {"modelSha256": ""}):
        with pytest.raises(ConfigurationError, match="pin '' is not a sha256"):
            DeployConfig.from_file(missing)
    with pytest.raises(ConfigurationError, match="is not a sha256"):
        ModelPin("v2", "s3://b/models/v2/", "not-a-sha")


def test_a_queued_change_is_due_for_its_writer_its_redelivery_or_once_stale():
    now = UPLOADED
    mine = queued({"event_id": "cam#2"}, version=7, frame="f-7", at=now)
    fresh = queued({"event_id": "cam#3"}, version=8, frame="f-8", at=now)
    entries = [mine, fresh]
    ids = lambda chosen: [d["event_id"] for d in chosen]  # noqa: E731
    assert ids(due(entries, version=8, now=now, own_version=8)) == ["cam#3"]  # a concurrent writer's: not yet
    assert ids(due(entries, version=8, now=now, own_frames={"f-7"})) == ["cam#2"]  # the redelivery of f-7
    assert ids(due(entries, version=8, now=now)) == []  # the audit: nothing stale yet
    assert ids(due(entries, version=7 + STALE_AFTER, now=now)) == ["cam#2"]  # waited STALE_AFTER commits
    later = now + STALE_AFTER_TIME
    assert ids(due(entries, version=8, now=later)) == ["cam#2", "cam#3"]  # no writer lives this long
