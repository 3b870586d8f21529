"""A key's capture time is trusted only within the skew of the object's upload (LastModified).

A camera whose clock runs ahead names its frames in the future; trusted, that time would make
every later frame of the camera "late" and freeze its state. Past the skew the result uses
LastModified and keeps the key's claim as ``key_captured_at``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from functions import wiring
from functions.frames.keys import format_timestamp
from functions.handler import lambda_handler
from tests.functional import test_handler
from tests.functional.test_handler import CONTEXT, RED, item_of, jpeg, sqs_event

make_app = test_handler.make_app
frames = test_handler.frames


def key_at(moment: datetime) -> str:
    return f"frames/cam-31/{moment.strftime('%Y%m%dT%H%M%S')}{moment.microsecond // 1000:03d}Z.jpg"


@pytest.mark.parametrize(
    ("ahead", "trusted"),
    [
        (timedelta(hours=-2), True),  # buffered on the camera, uploaded later: the normal case
        (timedelta(minutes=3), True),  # a little ahead: within the 5 minutes' skew
        (timedelta(hours=1), False),
        (timedelta(days=400), False),
    ],
)
def test_a_capture_time_ahead_of_the_upload_falls_back_to_last_modified(
    aws, make_app, frames, ahead, trusted
):
    claimed = (datetime.now(UTC) + ahead).replace(microsecond=0)
    key = key_at(claimed)
    record = frames.put(key, jpeg(RED))
    modified = aws.s3.head_object(Bucket=aws.bucket, Key=key)["LastModified"]
    wiring.install_app(make_app())
    try:
        assert lambda_handler(sqs_event(("m-1", [record])), CONTEXT) == {"batchItemFailures": []}
    finally:
        wiring.install_app(None)
    item = item_of(aws, key, record["s3"]["object"]["eTag"])
    if trusted:
        assert item["captured_at"] == format_timestamp(claimed) and "key_captured_at" not in item
    else:
        assert item["captured_at"] == format_timestamp(modified)
        assert item["key_captured_at"] == format_timestamp(claimed)


def test_the_skew_is_a_setting(aws, make_app, frames):
    claimed = (datetime.now(UTC) + timedelta(minutes=3)).replace(microsecond=0)
    key = key_at(claimed)
    record = frames.put(key, jpeg(RED))
    wiring.install_app(make_app(capture_skew_seconds=60))  # stricter than the default
    try:
        lambda_handler(sqs_event(("m-1", [record])), CONTEXT)
    finally:
        wiring.install_app(None)
    assert item_of(aws, key, record["s3"]["object"]["eTag"])["key_captured_at"] == format_timestamp(claimed)
