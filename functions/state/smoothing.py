"""Smoothing rules: noisy per-frame labels -> what is in front of a camera now (pure code).

A camera's state is a label ("bus", "car") or :data:`IDLE` ("none": nothing that counts as a
state, e.g. the background class ``empty`` or ``unknown``). It is computed from a small window
of the camera's recent ``ok`` frames, always in capture-time order (a late frame inserted in
its place changes the evaluation exactly as if it had arrived on time), plus the state that
held before, because hysteresis and dwell need it.

The rule (:class:`Rule`), one per stage with per-camera overrides (:class:`SmoothingConfig`):

* ``mode="k_of_n"``: a label is supported when it is seen in at least ``k`` of the last ``n``
  frames, or, with ``window_s``, ``k`` times among the frames captured within ``window_s``
  seconds of the newest one (the socksort pipeline's tumbling-window count, made sliding);
* ``mode="consecutive"``: the last ``k`` frames all carry the label (Frigate's "3 in a row");
  a held state then ends only after ``k`` frames in a row that do not support it;
* hysteresis: a frame counts towards *entering* a state at confidence >= ``enter`` and
  towards *keeping* it at confidence >= ``exit`` (``exit`` <= ``enter``);
* ``min_dwell_s``: a change is committed only once the new target has been supported for
  that long (capture time of its first supporting frame -> newest frame);
* ``ignore``: labels that never become a state (the background class, ``unknown``);
* ``abstain``: labels whose frames are no evidence at all (``unknown``: below the model's
  threshold): they neither support a state nor count against it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from typing import Any, Literal

from functions.errors import ConfigurationError

IDLE = "none"
Mode = Literal["k_of_n", "consecutive"]
_MODES = ("k_of_n", "consecutive")


@dataclass(frozen=True, order=True)
class Frame:
    """One ``ok`` frame as the state sees it. Ordered by capture time, then key."""

    captured_at: str  # ISO 8601 UTC with milliseconds and Z: sorts as a string
    key: str  # "<object_id>@<object_version>": identifies a redelivery
    label: str
    confidence: float

    def to_item(self) -> dict[str, Any]:
        return {"t": self.captured_at, "k": self.key, "l": self.label, "c": self.confidence}

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Frame:
        return cls(str(item["t"]), str(item["k"]), str(item["l"]), float(item["c"]))


@dataclass(frozen=True)
class Rule:
    """How one camera's frames become a state.

    The default, 2 in a row with ``unknown`` abstaining, is the best of the candidates the
    demo measures (docs/state-and-events.md: event F1 and smoothed-state accuracy on
    the demo's frames).
    """

    mode: Mode = "consecutive"
    k: int = 2
    n: int = 5
    window_s: float | None = None  # k_of_n over a time window instead of the last n frames
    enter: float = 0.6
    exit: float = 0.4
    min_dwell_s: float = 0.0
    ignore: tuple[str, ...] = ("empty", "unknown", "unfamiliar")
    # Labels that abstain: kept in the window, but neither for nor against any state (an
    # ``unknown`` or ``unfamiliar`` frame is no evidence that the bus left). Empty: they count
    # as "none" votes.
    abstain: tuple[str, ...] = ("unknown", "unfamiliar")
    keep: int = 12  # frames kept in the camera's window (late frames older than these are ignored)

    def __post_init__(self) -> None:
        problems = []
        if self.mode not in _MODES:
            problems.append(f"mode {self.mode!r} is not one of {', '.join(_MODES)}")
        if self.k < 1:
            problems.append(f"k={self.k} must be >= 1")
        if self.mode == "k_of_n" and self.window_s is None and self.n < self.k:
            problems.append(f"n={self.n} must be >= k={self.k}")
        if self.window_s is not None and self.window_s <= 0:
            problems.append(f"window_s={self.window_s} must be > 0")
        if not 0.0 <= self.exit <= self.enter <= 1.0:
            problems.append(f"need 0 <= exit ({self.exit}) <= enter ({self.enter}) <= 1")
        if self.min_dwell_s < 0:
            problems.append(f"min_dwell_s={self.min_dwell_s} must be >= 0")
        needed = self.k if self.mode == "consecutive" else self.n
        if self.window_s is None and self.keep < needed:
            problems.append(f"keep={self.keep} must hold at least {needed} frames")
        if problems:
            raise ConfigurationError("smoothing rule: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], base: Rule | None = None, where: str = "rule") -> Rule:
        """``base`` with ``values`` applied; unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigurationError(
                f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        changes = dict(values)
        for name in ("ignore", "abstain"):
            if name in changes:
                changes[name] = tuple(changes[name])
        try:
            return replace(base or cls(), **changes)
        except (TypeError, ValueError, ConfigurationError) as exc:
            raise ConfigurationError(f"{where}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["ignore"] = list(self.ignore)
        values["abstain"] = list(self.abstain)
        return values


@dataclass(frozen=True)
class SmoothingConfig:
    """The stage's rule and per-camera overrides (each override is applied on the stage's rule)."""

    default: Rule = field(default_factory=Rule)
    cameras: Mapping[str, Rule] = field(default_factory=dict)

    def rule_for(self, camera_id: str) -> Rule:
        return self.cameras.get(camera_id, self.default)

    @classmethod
    def parse(cls, text: str, source: str = "smoothing config") -> SmoothingConfig:
        """``{"default": {...}, "cameras": {"cam-03": {...}}}`` (JSON); empty text -> defaults."""
        if not text.strip():
            return cls()
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{source}: not valid JSON ({exc})") from exc
        if not isinstance(raw, dict) or set(raw) - {"default", "cameras"}:
            raise ConfigurationError(f'{source}: expected an object with "default" and/or "cameras"')
        default = Rule.from_dict(raw.get("default", {}), where=f"{source} default")
        cameras = {
            str(camera): Rule.from_dict(values, default, where=f"{source} cameras.{camera}")
            for camera, values in (raw.get("cameras") or {}).items()
        }
        return cls(default=default, cameras=cameras)


@dataclass(frozen=True)
class Evaluation:
    """The committed state after the newest frame of the window."""

    state: str
    since: str | None  # capture time of the first frame that supported the state
    changed: bool
    supporting: tuple[Frame, ...]  # frames of the window that support ``state`` (at exit level)


def insert(window: Sequence[Frame], frame: Frame, rule: Rule) -> tuple[tuple[Frame, ...], str]:
    """``frame`` placed in capture-time order -> (new window, outcome).

    Outcome: ``added`` | ``duplicate`` (its key is already in the window: a redelivery) |
    ``late`` (older than everything a full window keeps: recorded, ignored).
    """
    if any(existing.key == frame.key for existing in window):
        return tuple(window), "duplicate"
    ordered = sorted((*window, frame))
    kept = _trim(ordered, rule)
    if frame not in kept:
        return tuple(window), "late"
    return kept, "added"


def _trim(ordered: list[Frame], rule: Rule) -> tuple[Frame, ...]:
    kept = ordered[-rule.keep :]
    if rule.window_s is not None and kept:
        newest = _seconds(kept[-1].captured_at)
        kept = [f for f in kept if newest - _seconds(f.captured_at) <= rule.window_s]
    return tuple(kept)


def evaluate(window: Sequence[Frame], rule: Rule, state: str = IDLE, since: str | None = None) -> Evaluation:
    """The state after the newest frame of ``window`` (sorted), given the state held before."""
    frames = tuple(sorted(window))
    if not frames:
        return Evaluation(state, since, False, ())
    target, target_since = _target(frames, rule, state)
    if target == state:
        # A late frame can show that the state began earlier than we thought: keep the earliest.
        start = min(since, target_since) if since and target_since else since or target_since
        return Evaluation(state, start, False, _supporting(frames, rule, state, rule.exit))
    if rule.min_dwell_s > 0 and target_since is not None:
        held = _seconds(frames[-1].captured_at) - _seconds(target_since)
        if held < rule.min_dwell_s:
            return Evaluation(state, since, False, _supporting(frames, rule, state, rule.exit))
    return Evaluation(target, target_since, True, _supporting(frames, rule, target, rule.exit))


def replay(frames: Iterable[Frame], rule: Rule) -> list[tuple[Frame, Evaluation]]:
    """Feed ``frames`` one by one (in the order given) through the window: the reference loop.

    Used by the tests and the demo's comparison; the DynamoDB adapter does the same step by
    step, one frame per invocation.
    """
    window: tuple[Frame, ...] = ()
    state, since = IDLE, None
    out = []
    for frame in frames:
        window, outcome = insert(window, frame, rule)
        if outcome != "added":
            continue
        result = evaluate(window, rule, state, since)
        state, since = result.state, result.since
        out.append((frame, result))
    return out


def _recent(frames: tuple[Frame, ...], rule: Rule) -> tuple[Frame, ...]:
    if rule.abstain:
        frames = tuple(f for f in frames if f.label not in rule.abstain)
        if not frames:
            return ()
    if rule.mode == "consecutive":
        return frames[-rule.k :]
    if rule.window_s is not None:
        newest = _seconds(frames[-1].captured_at)
        return tuple(f for f in frames if newest - _seconds(f.captured_at) <= rule.window_s)
    return frames[-rule.n :]


def _supports(frame: Frame, label: str, rule: Rule, threshold: float) -> bool:
    if label == IDLE:
        return frame.label in rule.ignore and frame.label not in rule.abstain
    return frame.label == label and frame.confidence >= threshold


def _supporting(frames: tuple[Frame, ...], rule: Rule, label: str, threshold: float) -> tuple[Frame, ...]:
    return tuple(f for f in _recent(frames, rule) if _supports(f, label, rule, threshold))


def _held(frames: tuple[Frame, ...], rule: Rule, label: str) -> bool:
    """Does the held ``label`` survive the newest frame (at the exit threshold)?"""
    recent = _recent(frames, rule)
    if not recent:  # only abstaining frames: no evidence either way
        return True
    if rule.mode == "consecutive":  # ends after k frames in a row that do not support it
        return len(recent) < rule.k or any(_supports(f, label, rule, rule.exit) for f in recent)
    return sum(_supports(f, label, rule, rule.exit) for f in recent) >= rule.k


def _entered(frames: tuple[Frame, ...], rule: Rule, label: str) -> bool:
    recent = _recent(frames, rule)
    if rule.mode == "consecutive":
        return len(recent) == rule.k and all(_supports(f, label, rule, rule.enter) for f in recent)
    return sum(_supports(f, label, rule, rule.enter) for f in recent) >= rule.k


def _target(frames: tuple[Frame, ...], rule: Rule, state: str) -> tuple[str, str | None]:
    """What the window says now, and the capture time of the first frame supporting it."""
    if state != IDLE and _held(frames, rule, state):
        return state, _first(frames, rule, state, rule.exit)
    recent = _recent(frames, rule)
    candidates = sorted(
        {f.label for f in recent if f.label not in rule.ignore and f.label != IDLE},
        key=lambda label: (
            -sum(_supports(f, label, rule, rule.enter) for f in recent),
            -sum(f.confidence for f in recent if f.label == label),
            label,
        ),
    )
    for label in candidates:
        if _entered(frames, rule, label):
            return label, _first(frames, rule, label, rule.enter)
    if state == IDLE:
        return IDLE, None
    # Leaving a state for "none": it starts with the first frame after the last one that
    # still supported the old state (the newest frame when none of the window did).
    last_support = [f for f in frames if _supports(f, state, rule, rule.exit)]
    after = [f for f in frames if not last_support or f > last_support[-1]]
    return IDLE, (after[0] if after else frames[-1]).captured_at


def _first(frames: tuple[Frame, ...], rule: Rule, label: str, threshold: float) -> str | None:
    """Capture time of the first frame that supported ``label`` without a break up to now.

    Walks back over the whole window: while the label still held at an earlier frame, its
    start moves back to the first supporting frame seen then. So a start (and the dwell
    measured from it) can lie further back than the last n frames.
    """
    start = None
    for end in range(len(frames), 0, -1):
        prefix = frames[:end]
        recent = _recent(prefix, rule)
        supporting = [f for f in recent if _supports(f, label, rule, threshold)]
        if rule.mode == "consecutive":
            holds = bool(supporting)
        else:
            holds = sum(_supports(f, label, rule, min(threshold, rule.exit)) for f in recent) >= rule.k
        if not holds or not supporting:
            break
        start = supporting[0].captured_at
    return start


def _seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
