"""EventBridge adapter: camera state changes published to the stage's bus.

Every entry: source ``camsort``, detail-type ``camsort.state-changed``, detail = the event as
stored in the state table (:meth:`functions.state.episodes.Episode.detail`), resources empty.
Subscribers match on ``{"source": ["camsort"], "detail-type": ["camsort.state-changed"]}``.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.errors import CamsortError, TransientError
from functions.iam import requires
from functions.stores.storage import is_transient

SOURCE = "camsort"
DETAIL_TYPE = "camsort.state-changed"
# PutEvents takes at most 10 entries per call.
_BATCH = 10


class EventBusError(CamsortError):
    """EventBridge refused the events (missing bus, permissions, malformed entry)."""


def entry(bus_name: str, detail: dict[str, Any]) -> dict[str, Any]:
    """One PutEvents entry for a state-change ``detail``."""
    return {
        "EventBusName": bus_name,
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Detail": json.dumps(detail, sort_keys=True),
        "Resources": [],
    }


class EventPublisher:
    def __init__(self, bus_name: str, events_client: Any):
        self.bus_name = bus_name
        self._events = events_client

    @requires("events:PutEvents", resource="event-bus")
    def publish(self, details: list[dict[str, Any]]) -> None:
        """Publish every detail; raises when any entry was not accepted."""
        for start in range(0, len(details), _BATCH):
            entries = [entry(self.bus_name, detail) for detail in details[start : start + _BATCH]]
            try:
                response = self._events.put_events(Entries=entries)
            except (ClientError, BotoCoreError) as exc:
                kind = TransientError if is_transient(exc) else EventBusError
                raise kind(f"EventBridge bus {self.bus_name}: PutEvents failed ({exc})") from exc
            if response.get("FailedEntryCount"):
                codes = sorted(
                    {e.get("ErrorCode", "?") for e in response.get("Entries", []) if e.get("ErrorCode")}
                )
                raise TransientError(
                    f"EventBridge bus {self.bus_name}: {response['FailedEntryCount']} of {len(entries)} "
                    f"events not accepted ({', '.join(codes)}); they are published again with the next frame"
                )
