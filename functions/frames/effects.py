"""What follows from committed live results: the review mark and the camera state (whose
outbox carries the events). At least once: run after the result writes, and again whenever a
delivery finds a frame's result already written.

Why again: the result write is the commit point, and the process may die right after it. The
redelivery then finds a duplicate; if it skipped the side effects as before, a crash between
the write and them would lose them for good. Each step is idempotent, so running it again
costs a little and changes nothing that is already done:

* camera state: one conditional write per camera per invocation, whatever the number of its
  frames (they are applied in capture order first); the window insert recognises a frame it
  already holds (``duplicate``), and redelivered frames flush what their first writer left in
  the outbox (:meth:`functions.state.camera_state.CameraStates.observe`);
* review: the entry write is conditional, and a slot taken for an entry already queued is
  given back (:func:`functions.review.mark_for_review`); the reason is read from the result
  item (``review_reason``), so the redelivery needs neither the decision nor the model.

Never raises: every failure is logged and counted where it happens (``ReviewFailures``,
``StateFailures``, ``OutboxDropped``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions.concurrency import map_each
from functions.frames.review import mark_for_review

if TYPE_CHECKING:
    from functions.wiring import App


def follow_results(app: App, results: list[dict[str, Any]]) -> None:
    """Apply (or complete) the side effects of one invocation's committed result items."""
    if app.result_model_version:
        return  # another model version's answers (a backfill)
    live = [result for result in results if result.get("status") == "ok"]
    map_each(app.pool, lambda result: mark_for_review(app, result), live)
    states = app.camera_state
    if states is not None:
        cameras = list(states.frames_of(live).items())
        map_each(app.pool, lambda camera: states.observe_frames(*camera), cameras)
