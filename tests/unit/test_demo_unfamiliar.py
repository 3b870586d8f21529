"""The demo's unfamiliar-frame figures from result items: detections per kind, tampered cameras'
frames apart, false alarms on the healthy cameras' frames only."""

from __future__ import annotations

from datetime import UTC, datetime

from infra.demo.simulator import FRAME, SimulationManifest, UploadedObject
from infra.demo.unfamiliar import UNFAMILIAR_KIND, unfamiliar_figures


def uploaded(key: str, kind: str, label: str | None = None, tamper: str | None = None) -> UploadedObject:
    moment = datetime(2026, 12, 1, tzinfo=UTC)
    return UploadedObject(key, "cam-01", kind, label, 10, "e", moment, 0.0, tamper=tamper)


def test_figures_split_kinds_tampers_and_false_alarms():
    simulated = SimulationManifest(
        bucket="b",
        objects=[
            uploaded("u1", UNFAMILIAR_KIND, "noise"),
            uploaded("u2", UNFAMILIAR_KIND, "noise"),
            uploaded("u3", UNFAMILIAR_KIND, "photos"),
            uploaded("f1", FRAME, "bus"),
            uploaded("f2", FRAME, "car"),
            uploaded("f3", FRAME, "empty", tamper="covered"),
            uploaded("bad", "truncated"),
        ],
    )
    results = [
        {"key": "u1", "status": "ok", "label": "unfamiliar"},
        {"key": "u2", "status": "ok", "label": "bus"},
        {"key": "u3", "status": "ok", "labels": [], "unfamiliar": True},
        {"key": "f1", "status": "ok", "label": "unfamiliar"},  # a false alarm
        {"key": "f2", "status": "ok", "label": "car"},
        {"key": "f3", "status": "ok", "label": "unfamiliar"},  # the covered camera: not a false alarm
        {"key": "bad", "status": "rejected"},
        {"key": "elsewhere", "status": "ok", "label": "unfamiliar"},  # not uploaded by the demo
    ]
    assert unfamiliar_figures(results, simulated) == {
        "sent": {"noise": 2, "photos": 1},
        "detected": {"noise": 1, "photos": 1},
        "tampered": {"covered": 1},
        "tampered_unfamiliar": {"covered": 1},
        "frames": 2,
        "false_alarms": 1,
    }
