"""A camera's state item and what one frame does to it (pure: no AWS here).

The state item holds the window of recent ``ok`` frames, the committed state, and the open
*episode* (the event that started when that state began: its frame count, confidence sum,
first and last frame). :func:`advance` takes the item and one frame and returns the new item
plus, when the state changed, the event that closed and the one that opened. The DynamoDB
adapter (:mod:`functions.state.camera_state`) stores the result conditionally on ``version``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from functions.frames.image_health import FrameHealth
from functions.frames.regions import DEFAULT_REGION
from functions.state.camera_health import Health, HealthConfig, observe
from functions.state.smoothing import IDLE, Frame, Rule, evaluate, insert

# Keys of late frames that were recorded but ignored: kept (bounded) so that a redelivery of
# such a frame is recognised too and changes nothing.
MAX_IGNORED = 20


@dataclass(frozen=True)
class Episode:
    """One state of one camera, from its first supporting frame on: an event."""

    camera_id: str
    number: int  # 1, 2, ... per camera; the event id is "<camera_id>#<number>"
    previous_state: str
    state: str
    start: str  # capture time of the first frame that supported it
    frame_count: int = 0
    confidence_sum: float = 0.0
    first_key: str | None = None
    first_at: str | None = None
    last_key: str | None = None
    last_at: str | None = None  # capture time of its last supporting frame
    end: str | None = None  # set when the next state starts
    # Last supporting frame of the episode before it: a start back-dated over the window (late
    # frames, the frames that led up to the change) never reaches back into the previous episode.
    floor: str | None = None
    region: str = DEFAULT_REGION  # of the camera's view (docs/regions.md); numbered per region

    @property
    def is_change(self) -> bool:
        return self.state != self.previous_state

    @property
    def event_id(self) -> str:
        """``<camera_id>#<number>`` (the whole frame, as ever), ``<camera_id>#<region>#<number>``."""
        if self.region == DEFAULT_REGION:
            return f"{self.camera_id}#{self.number}"
        return f"{self.camera_id}#{self.region}#{self.number}"

    @property
    def mean_confidence(self) -> float | None:
        return round(self.confidence_sum / self.frame_count, 4) if self.frame_count else None

    def count(self, frame: Frame) -> Episode:
        """This episode with ``frame`` (a supporting frame, in any arrival order) counted."""
        first_key, first_at = self.first_key, self.first_at
        if first_at is None or frame.captured_at < first_at:
            first_key, first_at = frame.key, frame.captured_at
        last_key, last_at = self.last_key, self.last_at
        if last_at is None or frame.captured_at >= last_at:
            last_key, last_at = frame.key, frame.captured_at
        return replace(
            self,
            frame_count=self.frame_count + 1,
            confidence_sum=self.confidence_sum + frame.confidence,
            first_key=first_key,
            first_at=first_at,
            last_key=last_key,
            last_at=last_at,
        )

    def to_item(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "previous_state": self.previous_state,
            "state": self.state,
            "start": self.start,
            "frame_count": self.frame_count,
            "confidence_sum": self.confidence_sum,
            "first_key": self.first_key,
            "first_at": self.first_at,
            "last_key": self.last_key,
            "last_at": self.last_at,
            "end": self.end,
            "floor": self.floor,
        }

    @classmethod
    def from_item(cls, camera_id: str, item: dict[str, Any], region: str = DEFAULT_REGION) -> Episode:
        return cls(
            camera_id=camera_id,
            region=region,
            number=int(item["number"]),
            previous_state=str(item["previous_state"]),
            state=str(item["state"]),
            start=str(item["start"]),
            frame_count=int(item.get("frame_count", 0)),
            confidence_sum=float(item.get("confidence_sum", 0)),
            first_key=item.get("first_key"),
            first_at=item.get("first_at"),
            last_key=item.get("last_key"),
            last_at=item.get("last_at"),
            end=item.get("end"),
            floor=item.get("floor"),
        )

    def detail(self) -> dict[str, Any]:
        """The event as stored and published (EventBridge ``detail``)."""
        return {
            "event_id": self.event_id,
            "camera_id": self.camera_id,
            "region": self.region,
            "previous_state": self.previous_state,
            "state": self.state,
            "start": self.start,
            "end": self.end,
            "frame_count": self.frame_count,
            "mean_confidence": self.mean_confidence,
            "first_key": self.first_key,
            "last_key": self.last_key,
        }


@dataclass(frozen=True)
class CameraState:
    """The per-camera state item."""

    camera_id: str
    version: int = 0  # 0: no item yet
    window: tuple[Frame, ...] = ()
    episode: Episode | None = None  # None until the first frame
    ignored: tuple[str, ...] = ()
    # Outbox: closed episodes whose event item is not written yet, and changes not yet
    # published. They ride in the state item, so the one conditional write of the state is
    # the commit point; the adapter writes/publishes them after it and then clears them.
    unwritten: tuple[dict[str, Any], ...] = field(default=())
    unpublished: tuple[dict[str, Any], ...] = field(default=())
    region: str = DEFAULT_REGION  # the whole frame's state, or one region's (its own item)
    # The camera's health (functions/state/camera_health.py); None until a measured frame.
    health: Health | None = None

    @property
    def state(self) -> str:
        return self.episode.state if self.episode else IDLE

    @property
    def since(self) -> str | None:
        return self.episode.start if self.episode else None


@dataclass(frozen=True)
class Advance:
    outcome: str  # added | duplicate | late
    state: CameraState
    closed: Episode | None = None  # the episode that ended (its event gets an end)
    opened: Episode | None = None  # the episode that began (a new event)


def advance(current: CameraState, frame: Frame, rule: Rule) -> Advance:
    """What ``frame`` does to ``current`` (the version is bumped by the caller's write)."""
    if frame.key in current.ignored:
        return Advance("duplicate", current)
    window, outcome = insert(current.window, frame, rule)
    if outcome == "duplicate":
        return Advance(outcome, current)
    if outcome == "late":
        ignored = (*current.ignored, frame.key)[-MAX_IGNORED:]
        return Advance(outcome, replace(current, ignored=ignored))

    result = evaluate(window, rule, current.state, current.since)
    episode = current.episode
    if episode is None or result.changed:
        number = episode.number + 1 if episode else 1
        floor = episode.last_at if episode else None
        start = result.since or frame.captured_at
        if floor and start <= floor:
            later = [f.captured_at for f in result.supporting if f.captured_at > floor]
            start = min(later) if later else frame.captured_at
        opened = Episode(
            camera_id=current.camera_id,
            region=current.region,
            number=number,
            previous_state=current.state if episode else IDLE,
            state=result.state,
            start=start,
            floor=floor,
        )
        for supporting in result.supporting:
            if supporting.captured_at >= opened.start:
                opened = opened.count(supporting)
        if episode is None and not opened.frame_count and _supports(frame, opened.state, rule):
            opened = opened.count(frame)  # a camera's first frame starts its first episode
        # Every episode is an event item (the timeline has no holes); only a real change
        # (previous state != state) is published: a camera's first "none" is not news.
        closed = replace(episode, end=episode.last_at or opened.start) if episode else None
        return Advance(outcome, replace(current, window=window, episode=opened), closed, opened)

    if result.since and result.since < episode.start and (not episode.floor or result.since > episode.floor):
        episode = replace(episode, start=result.since)
    if _supports(frame, episode.state, rule) and frame.captured_at >= episode.start:
        episode = episode.count(frame)
    return Advance(outcome, replace(current, window=window, episode=episode))


def _supports(frame: Frame, state: str, rule: Rule) -> bool:
    if state == IDLE:
        return frame.label in rule.ignore or frame.confidence < rule.exit
    return frame.label == state and frame.confidence >= rule.exit


@dataclass(frozen=True)
class BatchAdvance:
    """What a camera's frames of one invocation do to its state, applied in capture order."""

    state: CameraState
    outcomes: tuple[tuple[str, str], ...]  # (frame key, added | duplicate | late), in capture order
    closed: tuple[Episode, ...] = ()  # episodes that ended, oldest first
    opened: tuple[tuple[Episode, str], ...] = ()  # changes (episode as opened, the frame that opened it)
    health_changes: tuple[tuple[dict[str, Any], str], ...] = ()  # (event detail, the frame that made it)

    @property
    def duplicates(self) -> tuple[str, ...]:
        return tuple(key for key, outcome in self.outcomes if outcome == "duplicate")


def advance_batch(
    current: CameraState,
    frames: Sequence[Frame],
    rule: Rule,
    measures: Mapping[str, FrameHealth] | None = None,
    health: HealthConfig | None = None,
    measured_only: Sequence[tuple[str, str]] = (),
) -> BatchAdvance:
    """:func:`advance` for each of ``frames`` in capture order, as if they had come one at a time.

    The same frames fed one per invocation in capture order give the same state, episodes and
    changes: the batch only saves the writes in between. A frame the window takes (``added``)
    with ``measures`` (by frame key) also feeds the camera's health, when ``health`` is on.

    ``measured_only``: frames (capture time, key) that feed the health alone, not the window (the
    whole frame of a camera with regions, whose ``state`` has no label to count:
    :func:`measure_only`).
    """
    state, outcomes, closed, opened, changes = current, [], [], [], []
    for frame in sorted(frames):
        step = advance(state, frame, rule)
        outcomes.append((frame.key, step.outcome))
        if step.closed:
            closed.append(step.closed)
        if step.opened and step.opened.is_change:
            opened.append((step.opened, frame.key))
        state = step.state
        measured = (measures or {}).get(frame.key)
        if health is not None and measured is not None and step.outcome == "added":
            seen = observe(
                state.health or Health(), state.camera_id, measured, frame.captured_at, frame.key, health
            )
            state = replace(state, health=seen.health)
            if seen.change is not None:
                changes.append((seen.change, frame.key))
    if health is not None and measured_only:
        state = measure_only(state, measured_only, measures or {}, health, outcomes, changes)
    return BatchAdvance(state, tuple(outcomes), tuple(closed), tuple(opened), tuple(changes))


def measure_only(
    state: CameraState,
    frames: Sequence[tuple[str, str]],
    measures: Mapping[str, FrameHealth],
    config: HealthConfig,
    outcomes: list[tuple[str, str]],
    changes: list[tuple[dict[str, Any], str]],
) -> CameraState:
    """Feed frames (capture time, key) to the health alone, in capture order, each at most once.

    Without a window to recognise a frame already counted, the health remembers the last frame
    it took (``Health.last_at``/``last_key``): a frame at or before it is a ``duplicate`` (a
    redelivery, whose events the caller flushes as its own) or was captured too late to count.
    Appends to ``outcomes`` and ``changes``.
    """
    for captured_at, key in sorted(frames):
        measured, health = measures.get(key), state.health or Health()
        if measured is None:
            continue
        if health.last_at is not None and (captured_at, key) <= (health.last_at, health.last_key or ""):
            outcomes.append((key, "duplicate"))
            continue
        seen = observe(health, state.camera_id, measured, captured_at, key, config)
        state = replace(state, health=replace(seen.health, last_at=captured_at, last_key=key))
        outcomes.append((key, "added"))
        if seen.change is not None:
            changes.append((seen.change, key))
    return state
