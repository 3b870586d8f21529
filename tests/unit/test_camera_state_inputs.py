"""What the camera state adapter does with result items it must not count (no AWS call made)."""

from __future__ import annotations

from functions.state.camera_state import CameraStates
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


def test_a_multilabel_answer_leaves_the_camera_state_alone():
    assert _states().observe_result({**ITEM, "labels": ["bus", "car"]}) is None


def test_rejected_and_cameraless_results_are_not_counted():
    assert _states().observe_result({**ITEM, "label": "bus", "status": "rejected"}) is None
    assert _states().observe_result({**ITEM, "label": "bus", "camera_id": None}) is None


def test_a_malformed_item_is_logged_not_raised():
    # The result is already committed: whatever is wrong with the item, the frame is not failed.
    assert _states().observe_result({**ITEM, "label": "bus", "confidence": "n/a"}) is None
