"""EventBridge adapter: camera state and health changes published to the stage's bus.

Every entry: source ``camsort``, resources empty, and either detail-type
``camsort.state-changed`` with detail = the event as stored in the state table
(:meth:`functions.state.episodes.Episode.detail`), or ``camsort.camera-health-changed`` with
the health change (:func:`functions.state.camera_health.observe`).
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
HEALTH_DETAIL_TYPE = "camsort.camera-health-changed"
# PutEvents takes at most 10 entries per call.
_BATCH = 10


class EventBusError(CamsortError):
    """EventBridge refused the events (missing bus, permissions, malformed entry)."""


def entry(bus_name: str, detail: dict[str, Any], detail_type: str = DETAIL_TYPE) -> dict[str, Any]:
    """One PutEvents entry for a ``detail`` (a state change unless ``detail_type`` says otherwise)."""
    return {
        "EventBusName": bus_name,
        "Source": SOURCE,
        "DetailType": detail_type,
        "Detail": json.dumps(detail, sort_keys=True),
        "Resources": [],
    }


class EventPublisher:
    def __init__(self, bus_name: str, events_client: Any):
        self.bus_name = bus_name
        self._events = events_client

    @requires("events:PutEvents", resource="event-bus")
    def publish(self, details: list[dict[str, Any]], detail_types: list[str] | None = None) -> None:
        """Publish every detail (each of its detail-type: state changes by default); raises
        when any entry was not accepted."""
        types = detail_types or [DETAIL_TYPE] * len(details)
        for start in range(0, len(details), _BATCH):
            entries = [
                entry(self.bus_name, detail, detail_type)
                for detail, detail_type in zip(
                    details[start : start + _BATCH], types[start : start + _BATCH], strict=True
                )
            ]
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
