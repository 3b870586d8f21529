"""Camera state and events against moto's server: DynamoDB transactions, EventBridge -> SQS.

Real concurrency: threads with their own clients update one camera through the HTTP server.
"""

from __future__ import annotations

import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from functions.frames.keys import format_timestamp
from functions.state.camera_state import CameraStates, state_from_item
from functions.state.event_bus import DETAIL_TYPE, SOURCE, EventPublisher
from functions.state.smoothing import IDLE, Frame, Rule, SmoothingConfig
from functions.stores.results import deserialize_item
from infra.deploy.topology import StackNames
from infra.local.stack import create_state_resources
from infra.ops.camera_views import StateSource, camera_events
from tests.fixtures.aws import aws_client

pytestmark = pytest.mark.e2e

T0 = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)
RULE = Rule(mode="k_of_n", k=2, n=3, keep=6)


def frame(second: float, label: str, confidence: float = 0.9, camera: str = "cam-03") -> Frame:
    captured = format_timestamp(T0 + timedelta(seconds=second))
    return Frame(captured, f"bucket/frames/{camera}/{second:07.2f}.jpg@etag", label, confidence)


@pytest.fixture
def state_stack(moto_server):
    names = StackNames.for_stage(f"state-{uuid.uuid4().hex[:8]}")
    queue_url = create_state_resources(moto_server.endpoint_url, names)
    return moto_server.endpoint_url, names, queue_url


def states_for(state_stack, rule: Rule = RULE, *, publish: bool = True) -> CameraStates:
    endpoint, names, _queue = state_stack
    publisher = EventPublisher(names.event_bus, aws_client("events", endpoint)) if publish else None
    return CameraStates(
        names.state_table, aws_client("dynamodb", endpoint), SmoothingConfig(default=rule), publisher
    )


def received(state_stack) -> list[dict]:
    endpoint, _names, queue_url = state_stack
    sqs = aws_client("sqs", endpoint)
    messages = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        messages += [json.loads(m["Body"]) for m in batch]
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in batch],
        )
    return messages


def events_of(state_stack, camera: str = "cam-03") -> list[dict]:
    """The events as readers see them: the event items, the open one as the state item has it."""
    endpoint, names, _queue = state_stack
    return camera_events(StateSource(endpoint, names.state_table, names.table), camera)


def test_a_bus_pulls_in_and_leaves_events_items_and_eventbridge_messages(state_stack):
    states = states_for(state_stack)
    sequence = [frame(0, "empty"), frame(1, "bus", 0.8), frame(2, "car", 0.7), frame(3, "bus", 0.9)]
    sequence += [frame(4, "bus", 0.7), frame(5, "empty"), frame(6, "empty"), frame(7, "empty")]
    observed = [states.observe("cam-03", [f]) for f in sequence]
    assert [o.state for o in observed] == [IDLE, IDLE, IDLE, "bus", "bus", "bus", IDLE, IDLE]
    assert [o.changed for o in observed].count(True) == 2

    events = events_of(state_stack)
    assert [(e["previous_state"], e["state"]) for e in events] == [(IDLE, IDLE), (IDLE, "bus"), ("bus", IDLE)]
    bus = events[1]
    assert bus["start"] == frame(1, "bus").captured_at and bus["end"] == frame(4, "bus").captured_at
    assert bus["frame_count"] == 3 and float(bus["mean_confidence"]) == pytest.approx(0.8)
    assert bus["first_key"] == frame(1, "bus").key and bus["last_key"] == frame(4, "bus").key
    assert "end" not in events[2]  # the open episode has no end yet

    messages = received(state_stack)
    assert len(messages) == 2
    first = messages[0]
    assert first["source"] == SOURCE and first["detail-type"] == DETAIL_TYPE
    assert {"id", "time", "region", "resources", "detail"} <= set(first)  # moto 5.2.5 leaves out "account"
    assert first["detail"] == {
        "event_id": "cam-03#2",
        "camera_id": "cam-03",
        "region": "default",  # the whole frame (docs/regions.md: every event names its region)
        "previous_state": IDLE,
        "state": "bus",
        "start": frame(1, "bus").captured_at,
        "end": None,
        "frame_count": 2,
        "mean_confidence": 0.85,
        "first_key": frame(1, "bus").key,
        "last_key": frame(3, "bus").key,
    }
    assert messages[1]["detail"]["previous_state"] == "bus" and messages[1]["detail"]["state"] == IDLE
    assert states.load("cam-03").unpublished == ()  # cleared once EventBridge took them


def test_redelivery_changes_nothing_and_late_frames(state_stack):
    states = states_for(state_stack, Rule(mode="k_of_n", k=2, n=3, keep=3))
    for second in (10, 11, 12):
        states.observe("cam-03", [frame(second, "bus")])
    before = states.load("cam-03")
    assert states.observe("cam-03", [frame(11, "bus")]).outcome == "duplicate"
    assert states.load("cam-03") == before

    # older than everything the window keeps: recorded as ignored, state untouched ...
    assert states.observe("cam-03", [frame(1, "car")]).outcome == "late"
    after_late = states.load("cam-03")
    assert (after_late.window, after_late.episode) == (before.window, before.episode)
    # ... and its redelivery changes nothing at all
    assert states.observe("cam-03", [frame(1, "car")]).outcome == "duplicate"
    assert states.load("cam-03") == after_late

    # inside the window: inserted in capture order
    assert states.observe("cam-03", [frame(11.5, "empty")]).outcome == "added"
    assert [f.captured_at for f in states.load("cam-03").window] == [
        frame(s, "x").captured_at for s in (11, 11.5, 12)
    ]


class _RacingClient:
    """A real DynamoDB client (its own connection) for one thread of the race.

    * Its first GetItem waits until every thread has read: all of them then write on the same
      version, so all but one lose that race and must re-read and retry.
    * Each single request is applied atomically, as DynamoDB applies a conditional write: moto
      5.2.5's threaded server does not (two PutItems conditioned on the same version both
      succeeded in about one run in four, each time losing a frame), so requests to the state
      table pass one at a time. Only the request is serialised: the read -> decide -> write
      cycle of the code under test stays fully concurrent, which is what is tested.
    """

    _atomic = threading.Lock()

    def __init__(self, client, barrier: threading.Barrier):
        self._client, self._barrier, self._raced = client, barrier, False

    def get_item(self, **kwargs):
        with self._atomic:
            response = self._client.get_item(**kwargs)
        if not self._raced:
            self._raced = True
            self._barrier.wait(timeout=30)
        return response

    def put_item(self, **kwargs):
        with self._atomic:
            return self._client.put_item(**kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


@pytest.mark.parametrize("threads", [2, 4])
def test_concurrent_updates_to_one_camera_lose_no_frame(state_stack, threads):
    endpoint, names, _queue = state_stack
    per_thread = 8
    rule = Rule(mode="k_of_n", k=2, n=3, keep=threads * per_thread)
    barrier = threading.Barrier(threads)

    def work(index: int) -> list:
        client = _RacingClient(aws_client("dynamodb", endpoint), barrier)
        states = CameraStates(names.state_table, client, SmoothingConfig(default=rule), None)
        # interleaved capture times: thread i owns seconds i, i+threads, ...; each invocation
        # carries two of them (given newest first: the batch is applied in capture order)
        seconds = [index + threads * j for j in range(per_thread)]
        return [
            states.observe("cam-07", [frame(s, "bus", camera="cam-07") for s in reversed(seconds[j : j + 2])])
            for j in range(0, per_thread, 2)
        ]

    with ThreadPoolExecutor(threads) as pool:
        observations = [o for batch in pool.map(work, range(threads)) for o in batch]

    total = threads * per_thread
    assert {o.outcome for o in observations} == {"added"}
    assert sum(o.attempts > 1 for o in observations) >= threads - 1  # the races really happened
    raw = aws_client("dynamodb", endpoint).get_item(
        TableName=names.state_table,
        Key={"camera_id": {"S": "cam-07"}, "item": {"S": "state"}},
        ConsistentRead=True,
    )["Item"]
    state = state_from_item(deserialize_item(raw))
    assert state.version >= total // 2  # one committed write per invocation (+ outbox clears)
    assert [f.key for f in state.window] == [frame(s, "bus", camera="cam-07").key for s in range(total)]
    assert state.state == "bus"


def test_a_stage_without_an_event_bus_keeps_state_and_event_items_only(state_stack):
    states = states_for(state_stack, publish=False)
    for second in range(3):
        states.observe("cam-03", [frame(second, "car")])
    assert states.load("cam-03").state == "car"
    assert [e["state"] for e in events_of(state_stack)] == [IDLE, "car"]
    assert received(state_stack) == []
    # the change waits in the state item, for a stage that adds a bus later
    assert [d["state"] for d in states.load("cam-03").unpublished] == ["car"]


def test_a_late_frame_counts_in_the_open_event_and_moves_its_start(state_stack):
    states = states_for(state_stack, Rule(mode="k_of_n", k=2, n=3, keep=8), publish=False)
    for second in (5, 6, 7):
        states.observe("cam-03", [frame(second, "bus")])
    states.observe("cam-03", [frame(4, "bus")])  # late, inside the window
    bus = events_of(state_stack)[-1]
    assert (bus["state"], bus["start"], bus["frame_count"]) == ("bus", frame(4, "bus").captured_at, 4)
    assert bus["first_key"] == frame(4, "bus").key and bus["last_key"] == frame(7, "bus").key


def test_a_new_event_never_starts_inside_the_previous_one(state_stack):
    """bus, a short 'none', bus again: the second bus starts after the 'none' began, not at the first bus."""
    states = states_for(state_stack, Rule(mode="k_of_n", k=2, n=3, keep=12), publish=False)
    for second, label in enumerate(["bus", "bus", "bus", "empty", "empty", "bus", "bus"]):
        states.observe("cam-03", [frame(second, label)])
    events = events_of(state_stack)
    assert [(e["state"], e["start"]) for e in events] == [
        (IDLE, frame(0, "x").captured_at),
        ("bus", frame(0, "x").captured_at),
        (IDLE, frame(3, "x").captured_at),
        ("bus", frame(5, "x").captured_at),
    ]
    starts = [e["start"] for e in events[1:]]
    assert starts == sorted(starts)


def test_a_quiet_cameras_stuck_event_is_published_by_the_audit_once_its_writer_is_gone(state_stack):
    from functions.audit_handler import flush_outboxes

    endpoint, names, _queue = state_stack
    broken_bus = EventPublisher("camsort.events.no-such-bus", aws_client("events", endpoint))
    writer = CameraStates(
        names.state_table, aws_client("dynamodb", endpoint), SmoothingConfig(default=RULE), broken_bus
    )
    for second in range(3):  # the change to car; its publish fails, and the camera goes quiet
        writer.observe("cam-03", [frame(second, "car")])
    assert [d["state"] for d in writer.load("cam-03").unpublished] == ["car"]
    assert received(state_stack) == []

    def audit_at(minutes: float) -> int:
        states = states_for(state_stack)
        states._now = lambda: datetime.now(UTC) + timedelta(minutes=minutes)
        return flush_outboxes(states, ["cam-03", "cam-quiet-and-empty"], aws_client("dynamodb", endpoint))

    assert audit_at(1) == 0  # its writer may still be at it: not the audit's to publish yet
    assert audit_at(16) == 1  # no writer lives past Lambda's 15 minutes
    assert [m["detail"]["state"] for m in received(state_stack)] == ["car"]
    assert writer.load("cam-03").unpublished == ()
    assert audit_at(17) == 0  # published once


def test_the_audit_flushes_every_state_item_of_a_quiet_camera_its_regions_too(state_stack):
    """A camera with regions whose changes' publish failed (whole frame and region ``bay1``), then
    went quiet: the audit's flush finds each of its state items by one Query and publishes both."""
    from functions.audit_handler import flush_outboxes, state_regions

    endpoint, names, _queue = state_stack
    dynamodb = aws_client("dynamodb", endpoint)
    broken_bus = EventPublisher("camsort.events.no-such-bus", aws_client("events", endpoint))
    writer = CameraStates(names.state_table, dynamodb, SmoothingConfig(default=RULE), broken_bus)
    for second in range(3):
        writer.observe("cam-03", [frame(second, "car")])
        writer.observe("cam-03", [frame(second, "occupied")], region="bay1")
        writer.observe("cam-03", [frame(second, "empty")], region="bay2")  # no change: nothing queued
    assert [d["state"] for d in writer.load("cam-03", "bay1").unpublished] == ["occupied"]
    assert state_regions(dynamodb, names.state_table, "cam-03") == ["default", "bay1", "bay2"]
    assert state_regions(dynamodb, names.state_table, "cam-none") == []

    states = states_for(state_stack)
    states._now = lambda: datetime.now(UTC) + timedelta(minutes=16)  # no writer lives past 15 minutes
    assert flush_outboxes(states, ["cam-03", "cam-none"], dynamodb) == 2
    assert sorted((m["detail"]["region"], m["detail"]["state"]) for m in received(state_stack)) == [
        ("bay1", "occupied"),
        ("default", "car"),
    ]
    assert writer.load("cam-03").unpublished == () and writer.load("cam-03", "bay1").unpublished == ()
    assert flush_outboxes(states, ["cam-03"], dynamodb) == 0  # published once
