"""What follows from committed live results: the review mark and the camera state (whose
outbox carries the events). At least once: run after the result writes, and again whenever a
delivery finds a frame's result already written.

Why again: the result write is the commit point, and the process may die right after it. The
redelivery then finds a duplicate; if it skipped the side effects as before, a crash between
the write and them would lose them for good. Each step is idempotent, so running it again
costs a little and changes nothing that is already done:

* camera state: one conditional write per camera (and per region of a camera with regions:
  each has its own state item) per invocation, whatever the number of its frames (they are applied in capture order first); the window insert recognises a frame it
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
from functions.frames.regions import DEFAULT_REGION
from functions.frames.review import mark_for_review
from functions.observability import logger
from functions.state.observed import camera_batches
from functions.state.smoothing import Rule

if TYPE_CHECKING:
    from functions.state.camera_state import CameraStates
    from functions.wiring import App


def follow_results(app: App, results: list[dict[str, Any]]) -> None:
    """Apply (or complete) the side effects of one invocation's committed result items."""
    if app.result_model_version:
        return  # another model version's answers (a backfill)
    live = [result for result in results if result.get("status") == "ok"]
    map_each(app.pool, lambda result: mark_for_review(app, result), live)
    states = app.camera_state
    if states is None:
        return
    batches = camera_batches(live, states.failed)  # by camera, and region of a camera with regions
    map_each(
        app.pool,
        lambda b: states.observe_frames(
            b.camera_id,
            b.frames,
            b.measures,
            b.region,
            region_rule(app, states, b.camera_id, b.region),
            b.measured_only,
        ),
        batches,
    )


def region_rule(app: App, states: CameraStates, camera_id: str, region: str) -> Rule | None:
    """A region's own smoothing (its configuration's ``smoothing``, over the camera's rule); None: the camera's."""
    if region == DEFAULT_REGION or app.camera_configs is None:
        return None
    try:  # read moments ago for the same frames: cached
        for configured in app.regions_for(camera_id).regions:
            if configured.name == region and configured.smoothing:
                base = states.smoothing.rule_for(camera_id)
                return Rule.from_dict(configured.smoothing, base, f"region {region}")
    except Exception as exc:  # the results are committed: the camera's rule rather than no state
        logger.warning(
            f"camera {camera_id} region {region}: smoothing not read ({exc}); the camera's rule applies"
        )
    return None
