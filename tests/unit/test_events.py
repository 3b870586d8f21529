"""Every recorded event shape parses into the expected FrameEvents (tests/events/*.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions.frames.events import (
    FrameEvent,
    UnsupportedEventError,
    normalise_sequencer,
    parse_event,
)

EVENTS = Path(__file__).resolve().parents[1] / "events"
BUCKET = "camsort-frames-local"


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def test_direct_s3_put():
    parsed = parse_event(load("s3_put.json"))
    assert parsed.kind == "s3"
    assert parsed.frames == [
        FrameEvent(
            bucket=BUCKET,
            key="frames/cam-01/20261122T073900123Z.jpg",
            size=48213,
            etag="9b2cf535f27731c974343645a3985328",
            version_id=None,
            sequencer="000000000000000061D4A2B7C3E5F10A",
            event_time="2026-11-22T07:39:00.456Z",
            event_name="ObjectCreated:Put",
            source_id=None,
        )
    ]


def test_sqs_two_messages_keep_their_message_ids():
    parsed = parse_event(load("sqs_s3_put_two_messages.json"))
    assert parsed.kind == "sqs"
    assert parsed.source_ids == [
        "2e1424d4-f796-459a-8184-9c92662be6da",
        "059f36b4-87a3-44ab-83d2-661975830a7d",
    ]
    assert [(f.source_id, f.key, f.size) for f in parsed.frames] == [
        ("2e1424d4-f796-459a-8184-9c92662be6da", "frames/cam-01/20261122T073900123Z.jpg", 48213),
        ("059f36b4-87a3-44ab-83d2-661975830a7d", "frames/cam-02/20261122T073901456Z.jpg", 51877),
    ]
    assert parsed.invalid == []


def test_sqs_body_with_two_records_gives_two_frames_of_one_message():
    parsed = parse_event(load("sqs_s3_put_two_records_one_body.json"))
    assert [(f.source_id, f.key) for f in parsed.frames] == [
        ("c80e8021-a70a-42c7-a470-796e1186f753", "frames/cam-01/a.jpg"),
        ("c80e8021-a70a-42c7-a470-796e1186f753", "frames/cam-01/b.png"),
    ]


def test_sns_wrapped_body():
    parsed = parse_event(load("sqs_sns_s3_put.json"))
    assert [(f.key, f.etag, f.size) for f in parsed.frames] == [
        ("frames/cam-03/frame-0001.jpg", "e4d909c290d0fb1ca068ffaddf22cbd0", 40001)
    ]


def test_encoded_keys_are_decoded_with_unquote_plus():
    parsed = parse_event(load("sqs_s3_put_encoded_keys.json"))
    assert [f.key for f in parsed.frames] == [
        "frames/cam 06/red flower.jpg",  # '+' is a space
        "frames/cam-06/c++ plus.jpg",  # '%2B' is a literal plus
        "frames/caméra-07/写真.jpg",  # percent-encoded UTF-8
    ]


def test_eventbridge_object_created_key_is_used_raw():
    parsed = parse_event(load("eventbridge_object_created.json"))
    assert parsed.kind == "eventbridge"
    (frame,) = parsed.frames
    assert frame == FrameEvent(
        bucket=BUCKET,
        key="frames/cam-04/2026-11-22T07-39-00.789Z.jpg",
        size=45678,
        etag="b1946ac92492d2347c6235b4d2611184",
        version_id="IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
        sequencer="0000000000000000617F08299329D189",
        event_time="2026-11-22T07:39:00Z",
        event_name="ObjectCreated:PutObject",
        source_id="17793124-05d4-b198-2fde-7ededc63b103",
    )


def test_eventbridge_literal_plus_is_not_turned_into_a_space():
    event = load("eventbridge_object_created.json")
    event["detail"]["object"]["key"] = "frames/cam-04/a+b c.jpg"
    assert parse_event(event).frames[0].key == "frames/cam-04/a+b c.jpg"


def test_eventbridge_other_detail_types_are_ignored():
    event = load("eventbridge_object_created.json")
    event["detail-type"] = "Object Deleted"
    parsed = parse_event(event)
    assert parsed.frames == [] and parsed.ignored == 1


def test_batch_operations_v1():
    parsed = parse_event(load("batch_operations_v1.json"))
    assert parsed.kind == "batch"
    assert parsed.batch.schema_version == "1.0"
    assert parsed.batch.invocation_id == "YXNkbGZqYWRmaiBhc2RmdW9hZHNmZGpmaGFzbGtkaGZza2RmaAo"
    assert parsed.batch.task_ids == ["dGFza2lkZ29lc2hlcmUK"]
    (frame,) = parsed.frames
    assert (frame.bucket, frame.key, frame.version_id, frame.size, frame.etag, frame.source_id) == (
        BUCKET,
        "frames/cam-05/night shift/frame+1.jpg",
        None,
        None,
        None,
        "dGFza2lkZ29lc2hlcmUK",
    )


def test_batch_operations_v2():
    parsed = parse_event(load("batch_operations_v2.json"))
    assert parsed.batch.schema_version == "2.0"
    (frame,) = parsed.frames
    assert (frame.bucket, frame.key, frame.version_id, frame.source_id) == (
        BUCKET,
        "frames/cam-05/20261122T074000000Z.png",
        "3/L4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY",
        "bG9uZ3Rhc2tpZGdvZXNoZXJlCg",
    )


def test_batch_operations_unknown_schema_is_refused():
    event = load("batch_operations_v2.json")
    event["invocationSchemaVersion"] = "3.0"
    with pytest.raises(UnsupportedEventError, match="3.0"):
        parse_event(event)


@pytest.mark.parametrize("name", ["s3_test_event.json", "sqs_s3_test_event.json"])
def test_test_events_are_ignored(name):
    parsed = parse_event(load(name))
    assert parsed.frames == [] and parsed.invalid == [] and parsed.ignored == 1


def test_non_object_created_records_are_ignored():
    event = load("s3_put.json")
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    parsed = parse_event(event)
    assert parsed.frames == [] and parsed.ignored == 1


def test_unparseable_sqs_body_is_reported_for_that_message_only():
    event = load("sqs_s3_put_two_messages.json")
    event["Records"][0]["body"] = "not json"
    parsed = parse_event(event)
    assert [i.source_id for i in parsed.invalid] == ["2e1424d4-f796-459a-8184-9c92662be6da"]
    assert [f.source_id for f in parsed.frames] == ["059f36b4-87a3-44ab-83d2-661975830a7d"]


def test_sqs_body_that_is_not_an_s3_notification_is_invalid():
    event = load("sqs_s3_put_two_messages.json")
    event["Records"][1]["body"] = json.dumps({"hello": "world"})
    parsed = parse_event(event)
    assert [i.source_id for i in parsed.invalid] == ["059f36b4-87a3-44ab-83d2-661975830a7d"]


@pytest.mark.parametrize(
    "event", [{}, {"foo": 1}, {"Records": []}, [], "text", {"Records": [{"eventSource": "aws:kinesis"}]}]
)
def test_unrecognised_shapes_raise(event):
    with pytest.raises(UnsupportedEventError):
        parse_event(event)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, ""),
        ("", ""),
        ("0A1B2C3D4E5F678901", "000000000000000A1B2C3D4E5F678901"),
        ("617f08299329d189", "0000000000000000617F08299329D189"),
    ],
)
def test_normalise_sequencer(raw, expected):
    assert normalise_sequencer(raw) == expected


def test_padded_sequencers_order_as_strings():
    # Unpadded, "FF" > "100" as strings although 0xFF < 0x100.
    assert normalise_sequencer("FF") < normalise_sequencer("100")
    assert normalise_sequencer("0061D4A2B7C3E5F10A") < normalise_sequencer("0061d4a2b7c3e5f10b")


@pytest.mark.parametrize("bad", ["xyz", "12-34", "1" * 33])
def test_malformed_sequencer_is_refused(bad):
    with pytest.raises(ValueError, match="sequencer"):
        normalise_sequencer(bad)


@pytest.mark.parametrize("bad", ["not-hex", "12-34", "1" * 33])
def test_a_malformed_sequencer_keeps_the_frame_without_ordering_and_says_so(bad):
    event = load("s3_put.json")
    event["Records"][0]["s3"]["object"]["sequencer"] = bad
    parsed = parse_event(event)
    (frame,) = parsed.frames
    assert frame.sequencer == ""
    (warning,) = parsed.warnings
    assert frame.key in warning and "without ordering" in warning


def test_a_malformed_sequencer_inside_sqs_is_not_an_invalid_message():
    event = load("sqs_s3_put_two_messages.json")
    body = json.loads(event["Records"][0]["body"])
    body["Records"][0]["s3"]["object"]["sequencer"] = "zz"
    event["Records"][0]["body"] = json.dumps(body)
    parsed = parse_event(event)
    assert parsed.invalid == []
    assert [f.sequencer for f in parsed.frames][0] == ""
    assert len(parsed.warnings) == 1


@pytest.mark.parametrize(
    "records", [["text"], [1], [None], [{"eventSource": "aws:sqs"}, "junk"], "not a list", {"a": 1}]
)
def test_records_that_are_not_objects_are_an_unsupported_event(records):
    with pytest.raises(UnsupportedEventError, match="Records"):
        parse_event({"Records": records})


def test_sqs_receive_count_is_carried_per_message():
    event = load("sqs_s3_put_two_messages.json")
    event["Records"][1]["attributes"]["ApproximateReceiveCount"] = "3"
    assert [frame.receive_count for frame in parse_event(event).frames] == [1, 3]
    del event["Records"][0]["attributes"]["ApproximateReceiveCount"]
    assert parse_event(event).frames[0].receive_count is None


def test_sources_without_a_receive_count_say_none():
    for name in ("s3_put.json", "eventbridge_object_created.json", "batch_operations_v2.json"):
        assert all(frame.receive_count is None for frame in parse_event(load(name)).frames), name
