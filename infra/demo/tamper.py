"""The demo's tampered cameras: mid-run one camera is covered and another turned; how fast the
function told, and what it told that was not so.

The plan (:func:`demo_tampers`) goes to the simulator (``simulate_cameras(tampers=...)``), which
renders those frames spoilt and records each frame's ``tamper``: the ground truth. The health
changes are read as a subscriber gets them (the stage's bus delivers them to a queue locally),
and scored by :func:`score` (pure):

* time to detect: from a camera's first tampered frame to the frame whose health change said
  so, in frames of that camera and in seconds of capture time;
* false alarms: every change to a health other than ``ok`` that is not its camera's tamper (a
  healthy camera, before the tamper began, or the wrong kind), against the healthy frames seen.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from functions.frames.keys import format_timestamp
from infra.demo.simulator import SimulationManifest
from infra.local.stack import LocalStack
from training.data.scene_tamper import TamperPlan

# Mid-run: the third camera gets covered, the fourth is turned to another street.
DEMO_TAMPERS = ("covered", "moved")
HEALTH_FILENAME = "health.json"  # the figures, beside the demo's report.json


def demo_tampers(cameras: list[str], rounds: int, start: float = 0.5) -> list[TamperPlan]:
    """The demo's plan: the last cameras (the third and fourth of four) from ``start`` of the run on."""
    tampered = cameras[-len(DEMO_TAMPERS) :] if len(cameras) > len(DEMO_TAMPERS) else cameras
    return [
        TamperPlan(camera_id, tamper, int(rounds * start))
        for camera_id, tamper in zip(tampered, DEMO_TAMPERS, strict=False)
    ]


@dataclass(frozen=True)
class Detection:
    camera_id: str
    tamper: str
    began: str  # capture time of the first tampered frame
    detected_at: str | None  # capture time of the frame whose change said so; None: missed
    frames: int | None  # the camera's frames from the first tampered one to that one
    seconds: float | None


@dataclass
class HealthFigures:
    detections: list[Detection] = field(default_factory=list)
    false_alarms: list[dict[str, Any]] = field(default_factory=list)
    healthy_frames: int = 0  # frames no tamper spoilt: what the false alarms are counted against

    def as_dict(self) -> dict[str, Any]:
        return {
            "detections": [asdict(d) for d in self.detections],
            "false_alarms": self.false_alarms,
            "healthy_frames": self.healthy_frames,
        }


def score(frames: list[tuple[str, str, str | None]], changes: list[dict[str, Any]]) -> HealthFigures:
    """Health changes (event details) against the ground truth: ``frames`` are (camera, capture
    time as the events write it, tamper or None), every frame the cameras sent."""
    frames = sorted(frames)
    figures = HealthFigures(healthy_frames=sum(tamper is None for _c, _t, tamper in frames))
    began: dict[str, tuple[str, str]] = {}  # camera -> (tamper, capture time of its first frame)
    for camera_id, captured_at, tamper in frames:
        if tamper and camera_id not in began:
            began[camera_id] = (tamper, captured_at)
    matched: set[str] = set()
    for camera_id, (tamper, start) in sorted(began.items()):
        hits = sorted(
            (c for c in changes if c["camera_id"] == camera_id and c["health"] == tamper and c["detected_at"] >= start),
            key=lambda c: c["detected_at"],
        )  # fmt: skip
        if not hits:
            figures.detections.append(Detection(camera_id, tamper, start, None, None, None))
            continue
        hit = hits[0]
        matched.add(hit["event_id"])
        count = sum(c == camera_id and start <= t <= hit["detected_at"] for c, t, _tamper in frames)
        seconds = (_moment(hit["detected_at"]) - _moment(start)).total_seconds()
        figures.detections.append(Detection(camera_id, tamper, start, hit["detected_at"], count, seconds))
    figures.false_alarms = [
        c
        for c in changes
        if c["health"] != "ok" and c["event_id"] not in matched and not _same_tamper(c, began)
    ]
    return figures


def truth_of(simulated: SimulationManifest) -> list[tuple[str, str, str | None]]:
    """The simulator's frames as :func:`score` takes them."""
    return [(o.camera_id, format_timestamp(o.captured_at), o.tamper) for o in simulated.frames]


def _same_tamper(change: dict[str, Any], began: dict[str, tuple[str, str]]) -> bool:
    """A repeated report of the tamper already detected (the camera went ok in between): not a false alarm."""
    tamper, start = began.get(change["camera_id"], (None, ""))
    return change["health"] == tamper and change["detected_at"] >= start


def _moment(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


def health_changes(stack: LocalStack) -> list[dict[str, Any]]:
    """Every health change the bus delivered (drained from the local subscriber's queue)."""
    sqs, queue = stack.client("sqs"), stack.health_events_queue_url
    details = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        details += [json.loads(m["Body"])["detail"] for m in batch]
        sqs.delete_message_batch(
            QueueUrl=queue,
            Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in batch],
        )
    unique = {detail["event_id"]: detail for detail in details}  # at least once: dedupe on event_id
    return sorted(unique.values(), key=lambda d: d["detected_at"])


def health_table(figures: HealthFigures) -> Table:
    table = Table(title="tampered cameras: time to detect against the simulator's ground truth")
    for name in ("camera", "tamper", "began (UTC)", "detected (UTC)", "frames", "seconds"):
        table.add_column(name, justify="right" if name in ("frames", "seconds") else "left")
    for d in figures.detections:
        table.add_row(
            d.camera_id,
            d.tamper,
            d.began[11:23],  # the time of day: the date is the run's
            d.detected_at[11:23] if d.detected_at else "[bold red]missed[/]",
            str(d.frames) if d.frames is not None else "-",
            f"{d.seconds:.1f}" if d.seconds is not None else "-",
        )
    alarms = ", ".join(f"{a['camera_id']} {a['health']} at {a['detected_at']}" for a in figures.false_alarms)
    table.caption = (
        f"false alarms: {len(figures.false_alarms)} in {figures.healthy_frames} healthy frames"
        + (f" ({alarms})" if alarms else "")
    )
    return table


def health_report(stack: LocalStack, simulated: SimulationManifest, console: Console) -> HealthFigures:
    """Print the detection figures (and return them)."""
    figures = score(truth_of(simulated), health_changes(stack))
    console.print(health_table(figures))
    return figures
