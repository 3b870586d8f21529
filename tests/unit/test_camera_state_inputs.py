"""What the camera state adapter does with result items it must not count (no AWS call made)."""

from __future__ import annotations

from functions.state.camera_state import CameraStates
from functions.state.observed import camera_batches
from functions.state.smoothing import SmoothingConfig


class _NoCalls:
    """A DynamoDB client that fails the test if it is used at all."""

    def __getattr__(self, name):
        raise AssertionError(f"unexpected DynamoDB call: {name}")


def _states() -> CameraStates:
    return CameraStates("camsort-state-unit", _NoCalls(), SmoothingConfig(), None)


ITEM = {
    "status": "ok",
    "camera_id": "cam-01",
    "captured_at": "2026-12-01T00:00:00.000Z",
    "object_id": "bucket/frames/cam-01/a.jpg",
    "object_version": "v1",
    "confidence": 0.9,
}


def frames_of(items: list[dict]) -> dict[str, list]:
    return {b.camera_id: b.frames for b in camera_batches(items, _states().failed)}


def test_a_multilabel_answer_leaves_the_camera_state_alone():
    assert frames_of([{**ITEM, "labels": ["bus", "car"]}]) == {}


def test_rejected_and_cameraless_results_are_not_counted():
    assert frames_of([{**ITEM, "label": "bus", "status": "rejected"}]) == {}
    assert frames_of([{**ITEM, "label": "bus", "camera_id": None}]) == {}


def test_a_malformed_item_is_logged_not_raised(caplog):
    # The result is already committed: whatever is wrong with the item, the frame is not failed.
    good = {**ITEM, "label": "car", "object_version": "v2"}
    frames = frames_of([{**ITEM, "label": "bus", "confidence": "n/a"}, good])
    assert [(frame.key, frame.label) for frame in frames["cam-01"]] == [
        ("bucket/frames/cam-01/a.jpg@v2", "car")
    ]
    assert "camera state not updated for bucket/frames/cam-01/a.jpg@v1" in caplog.text


def test_a_batch_is_grouped_by_camera_in_arrival_order():
    items = [
        {**ITEM, "label": "bus", "camera_id": "cam-02", "object_version": "v3"},
        {**ITEM, "label": "bus", "object_version": "v1"},
        {**ITEM, "label": "car", "object_version": "v2"},
    ]
    frames = frames_of(items)
    assert {camera: [f.key[-2:] for f in found] for camera, found in frames.items()} == {
        "cam-02": ["v3"],
        "cam-01": ["v1", "v2"],
    }
