"""Camera id and capture time from keys, with the default and a custom pattern."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from functions.env import DEFAULT_FRAMES_PREFIX, DEFAULT_KEY_PATTERN
from functions.errors import BadInputError, UnexpectedKeyError
from functions.frames.keys import KeyInfo, format_timestamp, parse_capture_time, parse_key

WITH_TIME = re.compile(r"^(?P<camera>[^/]+)/(?P<captured>[^/]+)\.(?i:jpe?g|png)$")


@pytest.mark.parametrize(
    ("key", "camera"),
    [
        ("frames/cam-01/x.jpg", "cam-01"),
        ("frames/cam-01/2026/11/22/x.JPEG", "cam-01"),
        ("frames/gate 3/frame.png", "gate 3"),
        ("frames/caméra/写真.jpg", "caméra"),
        # Any extension, any case, or none: the content decides (not_jpeg_or_png), not the name.
        ("frames/cam-01/x.Jpeg", "cam-01"),
        ("frames/cam-01/x.gif", "cam-01"),
        ("frames/cam-01/frame-0001", "cam-01"),
    ],
)
def test_default_pattern_gives_the_camera(key, camera):
    assert parse_key(key, prefix=DEFAULT_FRAMES_PREFIX, pattern=DEFAULT_KEY_PATTERN) == KeyInfo(camera, None)


@pytest.mark.parametrize(
    "key",
    [
        "other/cam-01/x.jpg",  # outside the prefix
        "frames/x.jpg",  # no camera folder
        "frames/cam-01/",  # a "folder" marker
    ],
)
def test_unexpected_keys_are_rejected_as_bad_input(key):
    with pytest.raises(UnexpectedKeyError) as caught:
        parse_key(key, prefix=DEFAULT_FRAMES_PREFIX, pattern=DEFAULT_KEY_PATTERN)
    assert isinstance(caught.value, BadInputError)
    assert caught.value.reason == "unexpected_key"
    assert key in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20261122T073900Z", datetime(2026, 11, 22, 7, 39, 0, tzinfo=UTC)),
        ("20261122T073900123Z", datetime(2026, 11, 22, 7, 39, 0, 123000, tzinfo=UTC)),
        ("2026-11-22T07:39:00Z", datetime(2026, 11, 22, 7, 39, 0, tzinfo=UTC)),
        ("2026-11-22T07:39:00.123Z", datetime(2026, 11, 22, 7, 39, 0, 123000, tzinfo=UTC)),
        ("2026-11-22T07-39-00.5", datetime(2026, 11, 22, 7, 39, 0, 500000, tzinfo=UTC)),
        ("2026-11-22_07_39_00+00:00", datetime(2026, 11, 22, 7, 39, 0, tzinfo=UTC)),
        ("1795333140456", datetime(2026, 11, 22, 7, 39, 0, 456000, tzinfo=UTC)),
    ],
)
def test_capture_time_formats(text, expected):
    assert parse_capture_time(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "20261322T073900Z", "2026-11-22T07:39:00+02:00", "12345"])
def test_bad_capture_times_are_unexpected_keys(text):
    with pytest.raises(UnexpectedKeyError, match=re.escape(text)):
        parse_capture_time(text, key=f"frames/cam/{text}.jpg")


def test_custom_pattern_with_capture_time():
    info = parse_key("cams/north/20261122T073900123Z.jpg", prefix="cams/", pattern=WITH_TIME)
    assert info == KeyInfo("north", datetime(2026, 11, 22, 7, 39, 0, 123000, tzinfo=UTC))


def test_format_timestamp_is_iso_millis_z():
    assert (
        format_timestamp(datetime(2026, 11, 22, 7, 39, 0, 123456, tzinfo=UTC)) == "2026-11-22T07:39:00.123Z"
    )
    assert format_timestamp(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000Z"


def test_default_pattern_reads_a_compact_timestamp_file_name():
    info = parse_key(
        "frames/cam-07/20261122T073900123Z.jpg", prefix=DEFAULT_FRAMES_PREFIX, pattern=DEFAULT_KEY_PATTERN
    )
    assert info.camera_id == "cam-07"
    assert info.captured_at is not None
    assert info.captured_at.isoformat() == "2026-11-22T07:39:00.123000+00:00"
    # A name that merely starts with a timestamp is not trusted as one.
    other = parse_key(
        "frames/cam-07/20261122T073900123Z-b.jpg", prefix=DEFAULT_FRAMES_PREFIX, pattern=DEFAULT_KEY_PATTERN
    )
    assert other.captured_at is None
