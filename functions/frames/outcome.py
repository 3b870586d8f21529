"""What became of one frame: :class:`FrameOutcome`.

Its own module so that the classifier (which makes outcomes) and observability (which logs
and counts them) both import it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from functions.frames.events import FrameEvent

Status = Literal["ok", "rejected", "duplicate", "transient", "error"]
FAILED = ("transient", "error")


@dataclass(frozen=True)
class FrameOutcome:
    frame: FrameEvent
    status: Status
    label: str | None = None
    confidence: float | None = None
    labels: list[str] | None = None  # multi-label models: the set (possibly empty)
    answer: dict[str, Any] | None = field(
        default=None, compare=False
    )  # functions.frames.outputs.answer_fields
    reason: str | None = None  # the BadInputError's reason code when rejected
    detail: str | None = None  # human-readable: why rejected / what failed
    error: BaseException | None = field(default=None, compare=False)
    latency_ms: float | None = None
    written: bool = False  # a result item was written by this invocation
    tagged: bool = False

    @property
    def failed(self) -> bool:
        return self.status in FAILED
