"""Shadow scoring: a candidate model on the live model's decoded batch, recorded beside the result.

On a sampled invocation, after every live result of the batch is written, the candidate runs
on the very same uint8 batch (no second download or decode) and its answer is added to each
live item as ``shadow_*`` attributes: an UpdateItem conditional on the item existing with the
same ``sequencer``, so a candidate answer is only ever attached to the result of the frame it
saw (a newer upload of the key, already written by another invocation, is left alone).

Why beside the live item rather than a separate item: `camsort compare` reads one item per
frame with both answers; the results table stays one item per frame (the audit counts them);
and an item deleted or replaced by a newer event takes its shadow answer with it.

The candidate never touches tags, camera state or events, and never fails the live path: any
error is caught, logged and counted (``ShadowFailures``); the live outcomes are already final.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from aws_lambda_powertools.metrics import MetricUnit

from functions.frames.decision import Decision, LabelSetDecision, decide_for
from functions.frames.keys import format_timestamp
from functions.frames.model import ModelSession
from functions.frames.outputs import answer_fields
from functions.observability import logger, metrics
from functions.stores.results import object_id

if TYPE_CHECKING:
    from functions.frames.outcome import FrameOutcome
    from functions.wiring import App


def is_sampled(rate: float, draw: float) -> bool:
    """An invocation is sampled when its uniform draw in [0, 1) falls below ``rate``."""
    return draw < rate


def shadow_attributes(
    decision: Decision | LabelSetDecision, model: ModelSession, ms_per_frame: float, at: str
) -> dict[str, object]:
    """What is added to the live item. Pure. The answer's shape is the live one's
    (``functions.frames.outputs``): ``shadow_label``, or ``shadow_labels`` for a multi-label candidate."""
    return {
        **{f"shadow_{name}": value for name, value in answer_fields(decision).items()},
        "shadow_model_version": model.manifest.model_version,
        "shadow_model_sha256": model.sha256,
        "shadow_ms_per_frame": round(ms_per_frame, 3),
        "shadow_at": at,
    }


@dataclass
class ShadowScorer:
    """The candidate session (opened once per container) and the sampling."""

    model: ModelSession
    sample_rate: float
    draw: Callable[[], float] = field(default_factory=lambda: random.Random().random)


def run_shadow(app: App, batch: np.ndarray, outcomes: Sequence[FrameOutcome]) -> int:
    """Score the candidate on ``batch`` (rows aligned with ``outcomes``); returns items recorded.

    Only frames whose live result this invocation wrote (``ok``) are scored. Never raises.
    """
    rows = [i for i, outcome in enumerate(outcomes) if outcome.status == "ok" and outcome.written]
    targets = [
        ShadowTarget(
            object_id(outcomes[row].frame.bucket, outcomes[row].frame.key),
            outcomes[row].frame.version_id or outcomes[row].frame.etag or "",
            outcomes[row].frame.sequencer,
        )
        for row in rows
    ]
    return score_shadow(app, app.shadow, batch, rows, targets)


@dataclass(frozen=True)
class ShadowTarget:
    """The live item a candidate's answer is recorded on (a frame's, or a region's)."""

    object_id: str
    sort_key: str
    sequencer: str


def score_shadow(
    app: App,
    shadow: ShadowScorer | None,
    batch: np.ndarray,
    rows: Sequence[int],
    targets: Sequence[ShadowTarget],
) -> int:
    """Score ``shadow``'s candidate on ``batch[rows]`` (on a sampled invocation) and record each answer
    on its target, conditional on the target's sequencer; returns items recorded. Never raises."""
    if shadow is None or not is_sampled(shadow.sample_rate, shadow.draw()):
        return 0
    if not rows:
        return 0
    recorded = 0
    try:
        started = time.perf_counter()
        probabilities, _features = shadow.model.predict(
            batch[list(rows)] if len(rows) < len(batch) else batch
        )
        manifest = shadow.model.manifest
        decisions = decide_for(manifest.task, probabilities, shadow.model.labels, manifest.thresholds)
        ms_per_frame = (time.perf_counter() - started) * 1000.0 / len(rows)
        at = format_timestamp(app.now())
        for target, decision in zip(targets, decisions, strict=True):
            recorded += app.table.record_shadow(
                target.object_id,
                target.sort_key,
                target.sequencer,
                shadow_attributes(decision, shadow.model, ms_per_frame, at),
            )
    except Exception as exc:  # the live results are written: a candidate problem is only logged
        logger.warning(
            f"shadow scoring with {shadow.model.model_path} failed ({exc}); live results unaffected"
        )
        metrics.add_metric(name="ShadowFailures", unit=MetricUnit.Count, value=1)
        return recorded
    metrics.add_metric(name="ShadowFrames", unit=MetricUnit.Count, value=recorded)
    metrics.add_metric(name="ShadowMsPerFrame", unit=MetricUnit.Milliseconds, value=ms_per_frame)
    return recorded
