"""The per-container cache of cameras' regions (functions/stores/camera_configs.py), with a fake
S3 answer and a fake clock: TTL, conditional re-reads, 404, the fallback for an invalid object,
transient failures. Also the named-models variable and the regions tag."""

from __future__ import annotations

import json

import pytest

from functions.errors import ConfigurationError, TransientError
from functions.frames.outputs import REGIONS_TAG, regions_tags
from functions.named_models import parse_named_models
from functions.stores.camera_configs import CameraConfigs, ConfigObject

GOOD = {"regions": [{"name": "bay1", "box": [0, 0, 0.5, 1], "model": "bay"}]}
OTHER = {"regions": [{"name": "gate", "box": [0.5, 0, 1, 1]}]}
PIN = "a" * 64


class FakeS3:
    """The camera objects by ETag; records each (camera, etag) it was asked for."""

    def __init__(self):
        self.objects: dict[str, tuple[str, bytes]] = {}
        self.asked: list[tuple[str, str | None]] = []
        self.failure: Exception | None = None

    def put(self, camera: str, config, etag: str) -> None:
        body = config if isinstance(config, bytes) else json.dumps(config).encode()
        self.objects[camera] = (etag, body)

    def fetch(self, camera: str, etag: str | None) -> ConfigObject:
        self.asked.append((camera, etag))
        if self.failure is not None:
            raise self.failure
        if camera not in self.objects:
            return ConfigObject("absent")
        current, body = self.objects[camera]
        return ConfigObject("unchanged", etag) if current == etag else ConfigObject("found", current, body)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def s3():
    return FakeS3()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def configs(s3, clock):
    return CameraConfigs(s3.fetch, ttl_seconds=60, known_models={"default", "bay"}, clock=clock)


def names(config) -> list[str]:
    return [region.name for region in config.regions]


def test_read_once_per_ttl_then_by_etag_and_a_change_is_picked_up_within_one_ttl(s3, clock, configs):
    s3.put("cam-1", GOOD, "e1")
    assert names(configs.config_for("cam-1")) == ["bay1"]
    clock.now += 59
    assert names(configs.config_for("cam-1")) == ["bay1"]
    assert s3.asked == [("cam-1", None)]  # within the TTL: no request
    s3.put("cam-1", OTHER, "e2")
    clock.now += 1
    assert names(configs.config_for("cam-1")) == ["gate"]  # one TTL after the first read
    assert s3.asked[-1] == ("cam-1", "e1")  # conditional on the ETag held
    clock.now += 60
    assert names(configs.config_for("cam-1")) == ["gate"]
    assert s3.asked[-1] == ("cam-1", "e2")  # unchanged: a 304, the held configuration kept


def test_no_object_is_no_regions_and_cached_likewise(s3, clock, configs):
    config = configs.config_for("cam-2")
    assert (config.camera_id, config.regions, len(config.effective_regions())) == ("cam-2", (), 1)
    configs.config_for("cam-2")
    assert s3.asked == [("cam-2", None)]
    s3.put("cam-2", GOOD, "e1")
    clock.now += 60
    assert names(configs.config_for("cam-2")) == ["bay1"]


def test_an_invalid_object_keeps_the_last_good_configuration_and_is_logged_at_each_check(
    s3, clock, configs, caplog
):
    s3.put("cam-3", GOOD, "e1")
    configs.config_for("cam-3")
    s3.put("cam-3", {"regions": [{"name": "bay1", "box": [0, 0, 1.5, 1], "model": "bay"}]}, "e2")
    clock.now += 60
    assert names(configs.config_for("cam-3")) == ["bay1"]  # the last good one
    assert "outside the frame" in caplog.text and "keeps its last good configuration" in caplog.text
    caplog.clear()
    clock.now += 60
    assert names(configs.config_for("cam-3")) == ["bay1"]
    assert s3.asked[-1] == ("cam-3", "e2")  # the bad object is not read again while unchanged ...
    assert "outside the frame" in caplog.text  # ... but still logged at every check
    s3.put("cam-3", OTHER, "e3")  # fixed
    clock.now += 60
    assert names(configs.config_for("cam-3")) == ["gate"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (
            json.dumps({"regions": [{"name": "g", "box": [0, 0, 1, 1], "model": "gate"}]}).encode(),
            "unknown model",
        ),
        (json.dumps({"regions": [OTHER["regions"][0], OTHER["regions"][0]]}).encode(), "used twice"),
    ],
)
def test_an_invalid_object_without_a_good_one_gives_the_whole_frame(s3, configs, caplog, body, message):
    s3.put("cam-4", body, "e1")
    assert configs.config_for("cam-4").regions == ()
    assert message in caplog.text and "keeps the whole frame" in caplog.text


def test_a_transient_failure_keeps_what_is_held_and_without_anything_held_is_raised(s3, clock, configs):
    s3.put("cam-5", GOOD, "e1")
    configs.config_for("cam-5")
    s3.failure = TransientError("throttled")
    clock.now += 60
    assert names(configs.config_for("cam-5")) == ["bay1"]
    with pytest.raises(TransientError):
        configs.config_for("cam-6")  # the frame is retried rather than answered without its regions
    s3.failure = None
    assert configs.config_for("cam-6").regions == ()


def test_named_models_are_pinned_and_named_plainly():
    (bay,) = parse_named_models(
        json.dumps({"bay": {"uri": "s3://m/models/bay/v1/", "sha256": PIN.upper()}}), "VAR"
    )
    assert (bay.name, bay.uri, bay.sha256, bay.candidate_uri) == ("bay", "s3://m/models/bay/v1/", PIN, None)
    assert parse_named_models("", "VAR") == ()
    for text, message in [
        ({"bay": {"uri": "s3://m/models/bay/v1/"}}, "no sha256"),
        ({"bay": {"uri": "s3://m/x/", "sha256": "abc"}}, "not a sha256"),
        ({"default": {"uri": "s3://m/x/", "sha256": PIN}}, "deployment's own model"),
        ({"Bay": {"uri": "s3://m/x/", "sha256": PIN}}, "model name"),
        (
            {"bay": {"uri": "s3://m/x/", "sha256": PIN, "candidate_uri": "s3://m/y/"}},
            "candidate_sha256 is not",
        ),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            parse_named_models(json.dumps(text), "VAR")


def test_the_regions_tag_holds_whole_regions_within_256_characters():
    assert regions_tags({"bay1": "occupied", "gate": ["car", "bus"]}) == {
        REGIONS_TAG: "bay1=occupied gate=car+bus"
    }
    many = {f"bay{index:02d}": "occupied" for index in range(32)}
    value = regions_tags(many)[REGIONS_TAG]
    assert len(value) <= 256 and value.endswith(" ...")
    kept = value[: -len(" ...")].split(" ")
    assert kept == [f"bay{index:02d}=occupied" for index in range(len(kept))] and len(kept) == 16
