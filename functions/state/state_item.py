"""The camera state item on the wire: small enough for one DynamoDB write unit (pure, no AWS).

DynamoDB bills a write per started KB of the item, and the state item is written once per
camera per invocation, so its size is the state's share of the bill. What a reader filters or
prints stays plain (``state``, ``since``, ``version``, ``updated_at``, ``health`` and
``health_since``); the rest (the window of recent frames, the open episode, the ignored late
frames, the outbox and the health reference) is one ``body``: zlib-compressed compact JSON. Frame keys of one camera share their bucket and prefix,
so they compress to little more than their names and versions: a full window of 12 frames,
the open episode and the health reference take about 750 bytes with realistic keys
(tests/unit/test_state_item.py holds the bound).

Sort keys: ``state`` is the whole frame's state item of a camera (and carries the camera's
health, which belongs to the camera, not to a region); a region's state sits beside it at
``state#<region>`` in the same partition, with the same layout and a plain ``region``.

Items written before the body existed (the plain ``window`` / ``episode`` / outbox attributes)
are still read.
"""

from __future__ import annotations

import json
import zlib
from decimal import Decimal
from typing import Any

from functions.frames.regions import DEFAULT_REGION
from functions.state.camera_health import Health
from functions.state.episodes import CameraState, Episode
from functions.state.smoothing import Frame
from functions.stores.results import serialize_item

PARTITION_KEY = "camera_id"
SORT_KEY = "item"
STATE_ITEM = "state"
BODY = "body"


def state_sort_key(region: str = DEFAULT_REGION) -> str:
    """``state`` for the whole frame (as ever), ``state#<region>`` for a region's state."""
    return STATE_ITEM if region == DEFAULT_REGION else f"{STATE_ITEM}#{region}"


def state_to_item(state: CameraState, *, updated_at: str) -> dict[str, Any]:
    """The state item in DynamoDB's wire form, ready for PutItem."""
    body = {
        "w": [[f.captured_at, f.key, f.label, f.confidence] for f in state.window],
        "e": _episode_row(state.episode) if state.episode else None,
        "i": list(state.ignored),
        "u": list(state.unwritten),
        "p": list(state.unpublished),
        "h": state.health.to_item() if state.health else None,
    }
    packed = zlib.compress(json.dumps(_plain(body), separators=(",", ":")).encode(), 9)
    plain = {
        PARTITION_KEY: state.camera_id,
        SORT_KEY: state_sort_key(state.region),
        "region": None if state.region == DEFAULT_REGION else state.region,
        "version": state.version,
        "state": state.state,
        "since": state.since,
        "health": state.health.status if state.health else None,
        "health_since": state.health.since if state.health else None,
        "updated_at": updated_at,
    }
    return serialize_item(plain) | {BODY: {"B": packed}}


def state_from_item(item: dict[str, Any]) -> CameraState:
    """A deserialized state item (``functions.stores.results.deserialize_item``) -> the state."""
    camera_id = str(item[PARTITION_KEY])
    region = str(item.get("region") or DEFAULT_REGION)
    body = _body(item)
    episode = body.get("e")
    return CameraState(
        camera_id=camera_id,
        region=region,
        version=int(item.get("version", 0)),
        window=tuple(_frame(frame) for frame in body.get("w") or []),
        episode=Episode.from_item(camera_id, _episode_fields(episode), region) if episode else None,
        ignored=tuple(body.get("i") or []),
        unwritten=tuple(_plain(entry) for entry in body.get("u") or []),
        unpublished=tuple(_plain(entry) for entry in body.get("p") or []),
        health=Health.from_item(body["h"]) if body.get("h") else None,
    )


def readable_state(item: dict[str, Any]) -> dict[str, Any]:
    """A deserialized state item with its body opened, for readers (``camsort cameras``, tests).

    ``window``: frames as ``{"t", "k", "l", "c"}``; ``last_frame``: the newest of them;
    ``episode`` and the outbox (``unwritten``, ``unpublished``) as stored.
    """
    state = state_from_item(item)
    window = [frame.to_item() for frame in state.window]
    plain = {name: value for name, value in item.items() if name != BODY}
    return plain | {
        "window": window,
        "last_frame": window[-1] if window else None,
        "episode": state.episode.to_item() if state.episode else None,
        "ignored": list(state.ignored),
        "unwritten": list(state.unwritten),
        "unpublished": list(state.unpublished),
        "health_reference": state.health.reference.summary() if state.health else None,
    }


# The open episode as a row (its field names would take a tenth of the item).
_EPISODE_FIELDS = (
    "number", "previous_state", "state", "start", "frame_count", "confidence_sum",
    "first_key", "first_at", "last_key", "last_at", "end", "floor",
)  # fmt: skip


def _episode_row(episode: Episode) -> list[Any]:
    fields = episode.to_item()
    return [fields[name] for name in _EPISODE_FIELDS]


def _episode_fields(stored: Any) -> dict[str, Any]:
    return dict(zip(_EPISODE_FIELDS, stored, strict=True)) if isinstance(stored, list) else dict(stored)


def _body(item: dict[str, Any]) -> dict[str, Any]:
    packed = item.get(BODY)
    if packed is None:  # written before the body existed
        return {
            "w": item.get("window") or [],
            "e": item.get("episode"),
            "i": item.get("ignored") or [],
            "u": item.get("unwritten") or [],
            "p": item.get("unpublished") or [],
        }
    raw = packed.value if hasattr(packed, "value") else packed  # boto3's Binary, or bytes
    loaded: dict[str, Any] = json.loads(zlib.decompress(bytes(raw)))
    return loaded


def _frame(value: Any) -> Frame:
    if isinstance(value, dict):  # the plain layout
        return Frame.from_item(value)
    captured_at, key, label, confidence = value
    return Frame(str(captured_at), str(key), str(label), float(confidence))


def _plain(value: Any) -> Any:
    """DynamoDB's Decimals back to int/float (for JSON and EventBridge)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
