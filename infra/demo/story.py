"""The demo's story: scenes that persist, their ground truth, and how well the events match it.

Each simulated camera follows a seeded scene schedule: the road is empty for a while, a bus
pulls in and stays, a car passes, ... Every frame is a render of its label by
``training.data.synthetic`` (same generator as the training frames). By default (the demo's
tampered cameras, ``infra.demo.tamper``) each camera looks at its own fixed street, as a real one
does, and only the traffic and the noise change; without tampers every frame is an independent
street. Either way what persists is the *label*, as it does in front of a real camera.

:func:`compare` scores the events against the ground-truth intervals (event precision and
recall, start-time error) and the per-frame labels against the smoothed state on the same
frames. :func:`replay_events` derives events from per-frame results with any rule, offline,
which is how the default rule was chosen (docs/state-and-events.md).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from rich.table import Table

from functions.state.smoothing import IDLE, Frame, Rule, replay

BACKGROUND = "empty"
# Scene lengths in frames (at the demo's 2 frames/s per camera: an empty road 2-5 s, a bus
# at a stop 6-12 s, a car passing 1.5-3 s).
EMPTY_FRAMES = (4, 10)
BUS_FRAMES = (12, 24)
CAR_FRAMES = (3, 6)
BUS_SHARE = 0.4


def scene_labels(rng: np.random.Generator, frames: int) -> list[str]:
    """One camera's label per frame: empty road, then a bus that stays or a car passing, ..."""
    labels: list[str] = []
    while len(labels) < frames:
        labels += [BACKGROUND] * int(rng.integers(EMPTY_FRAMES[0], EMPTY_FRAMES[1] + 1))
        if rng.random() < BUS_SHARE:
            labels += ["bus"] * int(rng.integers(BUS_FRAMES[0], BUS_FRAMES[1] + 1))
        else:
            labels += ["car"] * int(rng.integers(CAR_FRAMES[0], CAR_FRAMES[1] + 1))
    return labels[:frames]


@dataclass(frozen=True)
class TruthInterval:
    camera_id: str
    label: str
    start: str  # capture time of its first frame (ISO 8601 UTC, as the events)
    end: str  # capture time of its last frame
    frames: int


def truth_intervals(camera_id: str, labelled: Sequence[tuple[str, str]]) -> list[TruthInterval]:
    """``[(captured_at, label)]`` in capture order -> the non-background intervals."""
    intervals: list[TruthInterval] = []
    run: list[tuple[str, str]] = []
    for item in [*labelled, ("", "")]:
        if run and item[1] != run[-1][1]:
            if run[-1][1] != BACKGROUND:
                intervals.append(TruthInterval(camera_id, run[-1][1], run[0][0], run[-1][0], len(run)))
            run = []
        run.append(item)
    return intervals


def replay_events(camera_id: str, frames: Iterable[Frame], rule: Rule) -> list[dict]:
    """The events ``rule`` makes of ``frames`` (in arrival order), as event items look.

    Starts follow :func:`functions.state.episodes.advance`: back-dated to the first supporting frame,
    never into the previous event.
    """
    events: list[dict] = []
    for frame, result in replay(frames, rule):
        if not events or result.changed:
            floor = events[-1]["last_at"] if events else None
            start = result.since or frame.captured_at
            if floor and start <= floor:
                later = [f.captured_at for f in result.supporting if f.captured_at > floor]
                start = min(later) if later else frame.captured_at
            if events:
                events[-1]["end"] = events[-1]["last_at"]
            events.append(
                {"camera_id": camera_id, "state": result.state, "start": start, "last_at": frame.captured_at,
                 "floor": floor}
            )  # fmt: skip
        elif (
            result.since
            and result.since < events[-1]["start"]
            and (not events[-1]["floor"] or result.since > events[-1]["floor"])
        ):
            events[-1]["start"] = result.since
        if frame.label == result.state:
            events[-1]["last_at"] = frame.captured_at
    return events


@dataclass(frozen=True)
class Comparison:
    truth: int  # ground-truth intervals (bus/car)
    detected: int  # events whose state is a label
    matched: int
    start_errors_s: tuple[float, ...]  # event start - truth start, matched pairs
    frames: int  # ok frames compared
    frame_correct: int  # per-frame label == truth
    state_correct: int  # smoothed state at the frame's capture time == truth

    @property
    def precision(self) -> float:
        return self.matched / self.detected if self.detected else 0.0

    @property
    def recall(self) -> float:
        return self.matched / self.truth if self.truth else 0.0


def compare(
    truth: Sequence[TruthInterval],
    events: Sequence[dict],
    frames: Sequence[tuple[str, str, str, str]],
    ignore: Iterable[str] = (BACKGROUND, "unknown"),
) -> Comparison:
    """Score ``events`` against ``truth``; ``frames`` = (camera, captured_at, truth label, label).

    An event matches a truth interval of the same camera and label that it overlaps, one to
    one, largest overlap first. Labels in ``ignore`` (and the background truth) count as ``none``.
    """
    ignored = set(ignore)
    detected = [e for e in events if e["state"] != IDLE]
    pairs = []
    for i, event in enumerate(detected):
        for j, interval in enumerate(truth):
            if event["camera_id"] != interval.camera_id or event["state"] != interval.label:
                continue
            overlap = _overlap_s(event["start"], event.get("end"), interval.start, interval.end)
            if overlap is not None:
                pairs.append((-overlap, i, j))
    used_events, used_truth, errors = set(), set(), []
    for _neg, i, j in sorted(pairs):
        if i in used_events or j in used_truth:
            continue
        used_events.add(i)
        used_truth.add(j)
        errors.append(_seconds(detected[i]["start"]) - _seconds(truth[j].start))

    timelines: dict[str, list[dict]] = {}
    for event in sorted(events, key=lambda e: e["start"]):
        timelines.setdefault(event["camera_id"], []).append(event)
    frame_correct = state_correct = 0
    for camera, captured_at, truth_label, label in frames:
        expected = IDLE if truth_label == BACKGROUND else truth_label
        frame_correct += (IDLE if label in ignored else label) == expected
        state_correct += _state_at(timelines.get(camera, []), captured_at) == expected
    return Comparison(
        truth=len(truth),
        detected=len(detected),
        matched=len(used_events),
        start_errors_s=tuple(errors),
        frames=len(frames),
        frame_correct=frame_correct,
        state_correct=state_correct,
    )


def comparison_table(
    comparison: Comparison, title: str = "events against the simulator's ground truth"
) -> Table:
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    errors = comparison.start_errors_s
    rows = [
        ("ground-truth visits (bus/car)", str(comparison.truth)),
        ("events (bus/car)", str(comparison.detected)),
        ("matched", str(comparison.matched)),
        ("event precision", f"{comparison.precision:.1%}"),
        ("event recall", f"{comparison.recall:.1%}"),
        ("start error, median (s)", f"{statistics.median(errors):+.2f}" if errors else "-"),
        ("start error, max |.| (s)", f"{max(abs(e) for e in errors):.2f}" if errors else "-"),
        ("frames compared", str(comparison.frames)),
        ("per-frame label accuracy", _share(comparison.frame_correct, comparison.frames)),
        ("smoothed state accuracy", _share(comparison.state_correct, comparison.frames)),
    ]
    for row in rows:
        table.add_row(*row)
    return table


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%} ({part}/{whole})" if whole else "-"


def _state_at(timeline: list[dict], captured_at: str) -> str:
    state = IDLE
    for event in timeline:
        if event["start"] <= captured_at:
            state = event["state"]
        else:
            break
    return state


def _overlap_s(start: str, end: str | None, truth_start: str, truth_end: str) -> float | None:
    low = max(_seconds(start), _seconds(truth_start))
    high = min(_seconds(end) if end else float("inf"), _seconds(truth_end))
    return high - low if high >= low else None


def _seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
