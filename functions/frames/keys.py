"""Camera id and capture time from an object key.

Keys look like ``<prefix><camera_id>/<anything>.<jpg|jpeg|png>``; the prefix and the regex are
configuration (:mod:`functions.env`), applied to the key *after* the prefix. The regex must
name a ``camera`` group and may name a ``captured`` group holding the capture time as
``YYYYMMDDTHHMMSS[mmm]Z``, ISO 8601-ish (``2026-11-22T07:39:00.123Z``, also with ``-`` or
``_`` instead of ``:`` since colons are awkward in keys) or epoch milliseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from functions.errors import UnexpectedKeyError

_COMPACT = re.compile(r"^(\d{8})T(\d{6})(\d{3})?Z$")
_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T _](\d{2})[:\-_](\d{2})[:\-_](\d{2})(?:[.,](\d{1,6}))?(Z|[+-]00:?00)?$"
)
_EPOCH_MS = re.compile(r"^\d{12,14}$")


@dataclass(frozen=True)
class KeyInfo:
    camera_id: str
    captured_at: datetime | None  # UTC; None when the key does not carry it


def parse_key(key: str, *, prefix: str, pattern: re.Pattern[str] | str) -> KeyInfo:
    """Camera id (and capture time when present) of ``key``; ``UnexpectedKeyError`` otherwise."""
    if not key.startswith(prefix):
        raise UnexpectedKeyError(
            f"{key}: not under the frames prefix {prefix!r}; upload frames as {prefix}<camera_id>/<name>.jpg"
        )
    compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
    match = compiled.search(key[len(prefix) :])
    if match is None:
        raise UnexpectedKeyError(
            f"{key}: does not match the camera key pattern {compiled.pattern!r}; "
            f"upload frames as {prefix}<camera_id>/<name>.jpg or .png"
        )
    camera_id = match.group("camera")
    if not camera_id:
        raise UnexpectedKeyError(
            f"{key}: the camera id is empty; upload frames as {prefix}<camera_id>/<name>.jpg"
        )
    captured = match.groupdict().get("captured")
    captured_at = parse_capture_time(captured, key) if captured else None
    return KeyInfo(camera_id=camera_id, captured_at=captured_at)


def parse_capture_time(text: str, key: str = "<key>") -> datetime:
    """``YYYYMMDDTHHMMSS[mmm]Z`` | ISO 8601-ish | epoch milliseconds -> aware UTC datetime."""
    try:
        if match := _COMPACT.match(text):
            day, clock, millis = match.groups()
            moment = datetime.strptime(day + clock, "%Y%m%d%H%M%S")
            return moment.replace(microsecond=int(millis or 0) * 1000, tzinfo=UTC)
        if match := _ISO.match(text):
            year, month, day, hour, minute, second, fraction, _zone = match.groups()
            micros = int((fraction or "0").ljust(6, "0"))
            return datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tzinfo=UTC
            )
        if _EPOCH_MS.match(text):
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    except ValueError as exc:  # e.g. month 13: matched the shape, not a real time
        raise UnexpectedKeyError(f"{key}: capture time {text!r} is not a valid time ({exc})") from exc
    raise UnexpectedKeyError(
        f"{key}: capture time {text!r} is neither YYYYMMDDTHHMMSS[mmm]Z, ISO 8601 (UTC) nor epoch milliseconds"
    )


def is_ahead(claimed: datetime, reference: datetime, skew: timedelta) -> bool:
    """True when a key's capture time ``claimed`` lies more than ``skew`` after ``reference``
    (the object's LastModified): a frame is not captured after its upload, so such a time is
    a camera clock running ahead, and trusting it would make the camera's later frames late."""
    return claimed - reference > skew


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``: sorts as a string, as the GSI needs."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def frame_key(frames_prefix: str, camera_id: str, captured_at: datetime, suffix: str = ".jpg") -> str:
    """``<prefix><camera>/<YYYYMMDDTHHMMSSmmmZ><suffix>``: a key whose capture time parses back."""
    stamp = captured_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S") + f"{captured_at.microsecond // 1000:03d}Z"
    return f"{frames_prefix}{camera_id}/{stamp}{suffix}"
