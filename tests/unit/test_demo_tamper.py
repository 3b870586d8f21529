"""The demo's tamper scoring against ground truth (pure): time to detect, false alarms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from infra.demo.simulator import FRAME, SimulationManifest, UploadedObject
from infra.demo.tamper import demo_tampers, score, truth_of
from training.data.scene_tamper import TamperPlan

T0 = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def manifest(plans: list[TamperPlan], frames: int = 10) -> SimulationManifest:
    simulated = SimulationManifest(bucket="b")
    for camera_id in ("cam-01", "cam-02", "cam-03"):
        for index in range(frames):
            tamper = next((p.tamper for p in plans if p.camera_id == camera_id and index >= p.start), None)
            simulated.objects.append(
                UploadedObject(
                    key=f"frames/{camera_id}/{index}.jpg", camera_id=camera_id, kind=FRAME, label="empty",
                    size=1, etag="e", captured_at=T0 + timedelta(seconds=index / 2), uploaded_at=0.0, tamper=tamper,
                )
            )  # fmt: skip
    return simulated


def change(camera_id: str, health: str, index: int, number: int = 1) -> dict:
    at = (T0 + timedelta(seconds=index / 2)).strftime("%Y-%m-%dT%H:%M:%S.") + f"{index % 2 * 500:03d}Z"
    return {
        "event_id": f"{camera_id}#health#{number}",
        "camera_id": camera_id,
        "health": health,
        "detected_at": at,
    }


def test_detections_are_timed_from_the_first_tampered_frame_and_the_rest_are_false_alarms():
    plans = [TamperPlan("cam-02", "covered", 4), TamperPlan("cam-03", "moved", 4)]
    changes = [
        change("cam-01", "defocused", 5),  # a healthy camera: false alarm
        change("cam-02", "moved", 2),  # before its tamper began, and the wrong kind: false alarm
        change("cam-02", "covered", 6, 2),  # frames 4, 5, 6: 3 frames, 1.0 s
        change("cam-02", "ok", 8, 3),  # back to ok: no alarm
    ]
    figures = score(truth_of(manifest(plans)), changes)
    (covered, moved) = figures.detections
    assert (covered.camera_id, covered.frames, covered.seconds) == ("cam-02", 3, 1.0)
    assert (moved.camera_id, moved.detected_at, moved.frames) == ("cam-03", None, None)  # missed
    assert [(a["camera_id"], a["health"]) for a in figures.false_alarms] == [
        ("cam-01", "defocused"),
        ("cam-02", "moved"),
    ]
    assert figures.healthy_frames == 30 - 6 - 6


def test_the_demo_tampers_the_third_and_fourth_cameras_half_way():
    cameras = ["cam-01", "cam-02", "cam-03", "cam-04"]
    assert demo_tampers(cameras, 50) == [
        TamperPlan("cam-03", "covered", 25),
        TamperPlan("cam-04", "moved", 25),
    ]
    assert demo_tampers(["cam-01"], 10) == [TamperPlan("cam-01", "covered", 5)]
