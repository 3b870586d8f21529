"""The camera state item's outbox: which queued events are due for publishing, and its bound.

Pure (no AWS): :mod:`functions.state.camera_state` stores the outbox in the state item and calls
these. A change is queued by the commit that made it, tagged with that commit's version, the
frame that caused it and the time; the outbox is then flushed:

* right after the commit, by its own writer (the entries that commit queued);
* by a redelivery of the frame that queued an entry (its first writer died before publishing:
  a message is only redelivered once its first invocation has ended);
* by any later commit of the camera, and by the scheduled audit, once an entry has waited
  :data:`STALE_AFTER` commits or :data:`STALE_AFTER_TIME` (no writer outlives Lambda's longest
  timeout): its writer failed to publish it or died.

Concurrent writers of one camera therefore do not publish each other's fresh entries (a
publish is at least once, but not needlessly twice), and a quiet camera's event still goes out.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from functions.frames.keys import format_timestamp

# Events kept in the state item until written / published (the item stays small); an entry
# pushed out of the bound is dropped and counted (OutboxDropped).
MAX_OUTBOX = 20
QUEUED_AT = "queued_at_version"
QUEUED_BY = "queued_by"  # the frame id (functions.camera_state.frame_id) whose commit queued it
QUEUED_TIME = "queued_time"
# The entry's EventBridge detail-type (functions.state.event_bus); absent: a state change.
QUEUED_TYPE = "detail_type"
STALE_AFTER = 5
# Lambda's maximum timeout: an entry older than this has no live writer left.
STALE_AFTER_TIME = timedelta(minutes=15)
_BOOKKEEPING = (QUEUED_AT, QUEUED_BY, QUEUED_TIME, QUEUED_TYPE)


def queued(
    detail: dict[str, Any], *, version: int, frame: str, at: datetime, detail_type: str | None = None
) -> dict[str, Any]:
    """An event detail as it waits in the outbox (with who queued it, at which version, when,
    and its detail-type when it is not a state change)."""
    entry = detail | {QUEUED_AT: version, QUEUED_BY: frame, QUEUED_TIME: format_timestamp(at)}
    return entry | ({QUEUED_TYPE: detail_type} if detail_type else {})


def detail_type_of(entry: dict[str, Any], default: str) -> str:
    return str(entry.get(QUEUED_TYPE) or default)


def bounded(entries: Sequence[dict[str, Any]]) -> tuple[tuple[dict[str, Any], ...], int]:
    """(the newest :data:`MAX_OUTBOX` entries, how many older ones were dropped)."""
    dropped = max(0, len(entries) - MAX_OUTBOX)
    return tuple(entries[dropped:]), dropped


def due(
    entries: Sequence[dict[str, Any]],
    *,
    version: int,
    now: datetime,
    own_version: int | None = None,
    own_frames: Collection[str] = (),
) -> list[dict[str, Any]]:
    """The entries a flush at state ``version`` publishes (see the module docstring).

    ``own_version``: the version the flushing writer committed (its own entries); ``own_frames``:
    the frames a redelivery completes (the entries their dead writer queued). Neither: the audit,
    which publishes only stale entries. An entry without a queue time is stale.
    """
    stale_before = format_timestamp(now - STALE_AFTER_TIME)
    chosen = []
    for entry in entries:
        queued_at = int(entry.get(QUEUED_AT, 0))
        mine = queued_at == own_version or entry.get(QUEUED_BY) in own_frames
        stale = version - queued_at >= STALE_AFTER or str(entry.get(QUEUED_TIME) or "") <= stale_before
        if mine or stale:
            chosen.append(entry)
    return chosen


def published_form(entry: dict[str, Any]) -> dict[str, Any]:
    """The event detail without the outbox's bookkeeping."""
    return {name: value for name, value in entry.items() if name not in _BOOKKEEPING}
