"""What follows from a committed live result: the review mark and the camera state (whose
outbox carries the events). At least once: run after the result write, and again whenever a
delivery finds the frame's result already written.

Why again: the result write is the commit point, and the process may die right after it. The
redelivery then finds a duplicate; if it skipped the side effects as before, a crash between
the write and them would lose them for good. Each step is idempotent, so running it again
costs a little and changes nothing that is already done:

* camera state: the window insert recognises a frame it already holds (``duplicate``), and
  a redelivered frame flushes what its first writer left in the outbox
  (:meth:`functions.camera_state.CameraStates.observe`);
* review: the entry write is conditional, and a slot taken for an entry already queued is
  given back (:func:`functions.review.mark_for_review`); the reason is read from the result
  item (``review_reason``), so the redelivery needs neither the decision nor the model.

Never raises: every failure is logged and counted where it happens (``ReviewFailures``,
``StateFailures``, ``OutboxDropped``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.frames.review import mark_for_review

if TYPE_CHECKING:
    from functions.wiring import App


def follow_result(app: App, result: dict[str, Any]) -> None:
    """Apply (or complete) the side effects of one committed result item."""
    if app.result_model_version or result.get("status") != "ok":
        return  # another model version's answer (a backfill), or not a classified frame
    mark_for_review(app, result)
    if app.camera_state is not None:
        app.camera_state.observe_result(result)
