"""A camera's health from its own frames: covered, defocused, moved, dark (pure: no AWS here).

Each frame's measures (:mod:`functions.frames.image_health`) are compared with the camera's
*reference*, learned from its own recent healthy frames and kept in its state item:

* brightness, contrast and sharpness: running means over the first :attr:`HealthConfig.warmup`
  frames, then exponential averages (weight 1/``HealthConfig.horizon``), so the reference follows
  slow changes (the light of the day) and not a tamper: only a frame that looks healthy, of a
  camera that is healthy, updates it;
* the scene: one saturating vote counter per fingerprint bit (0-15, one hex digit each); the
  reference fingerprint is the bits voted on. A passing bus flips some bits for a frame or
  two and is outvoted; a bus parked for good becomes part of the scene.

A frame *looks* (first match, in this order):

* ``dark``: mean luma below :attr:`HealthConfig.dark_brightness` (no light);
* ``covered``: luma standard deviation below :attr:`HealthConfig.covered_contrast` (near-uniform);
* ``defocused``: sharpness below :attr:`HealthConfig.defocus_ratio` of the reference's;
* ``moved``: more than :attr:`HealthConfig.moved_fraction` of the fingerprint's bits differ
  from the reference's;
* ``ok`` otherwise. Until the reference has ``warmup`` frames only ``dark`` and ``covered``
  (absolute) can be told.

The camera's *health* changes only when a look holds for its persistence (frames in a row,
``HealthConfig.persistence``: env ``CAMSORT_HEALTH_*_FRAMES``), back to ``ok`` likewise; the
change is dated by the first frame of the run. Frames are fed in capture order (the state
batch, :func:`functions.state.episodes.advance_batch`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from functions import env
from functions.frames.image_health import FrameHealth, fingerprint_distance

OK = "ok"
CONDITIONS = ("dark", "covered", "defocused", "moved")
HEALTH = (OK, *CONDITIONS)
_VOTE_MAX = 15  # one hex digit per fingerprint bit
_VOTE_START = 8  # the first frame's bit: 8 (a one) or 7 (a zero), halfway


@dataclass(frozen=True)
class HealthConfig:
    """Thresholds (fixed: measured on the synthetic tampers, docs/camera-health.md) and the
    frames each condition must hold before the health changes (env: functions/env.py)."""

    warmup: int = env.DEFAULT_HEALTH_WARMUP_FRAMES
    horizon: int = 32
    dark_brightness: float = 15.0
    covered_contrast: float = 8.0
    defocus_ratio: float = 0.25
    moved_fraction: float = 0.32
    persistence: Mapping[str, int] = field(
        default_factory=lambda: {
            "dark": env.DEFAULT_HEALTH_DARK_FRAMES,
            "covered": env.DEFAULT_HEALTH_COVERED_FRAMES,
            "defocused": env.DEFAULT_HEALTH_DEFOCUSED_FRAMES,
            "moved": env.DEFAULT_HEALTH_MOVED_FRAMES,
            OK: env.DEFAULT_HEALTH_RECOVERED_FRAMES,
        }
    )

    def frames_for(self, health: str) -> int:
        return int(self.persistence.get(health, 1))


@dataclass(frozen=True)
class Reference:
    frames: int = 0  # healthy frames learned
    brightness: float = 0.0
    contrast: float = 0.0
    log_sharpness: float = 0.0  # mean of log(1 + sharpness): a ratio test on a scale-free mean
    votes: str = ""  # one hex digit per fingerprint bit

    def fingerprint(self) -> str:
        bits = "".join("1" if int(v, 16) >= _VOTE_START else "0" for v in self.votes)
        return f"{int(bits, 2):0{len(bits) // 4}x}" if bits else ""

    @property
    def sharpness(self) -> float:
        return math.expm1(self.log_sharpness)

    def summary(self) -> dict[str, Any]:
        """What a reader (an event, `camsort cameras`) shows of the reference."""
        return {
            "frames": self.frames,
            "brightness": round(self.brightness, 2),
            "contrast": round(self.contrast, 2),
            "sharpness": round(self.sharpness, 1),
        }


@dataclass(frozen=True)
class Health:
    """A camera's health and what it takes to tell the next frame's (stored in its state item)."""

    status: str = OK
    since: str | None = None  # capture time of the first frame of the run that set ``status``
    changes: int = 0  # health changes so far: numbers the events
    run_look: str = OK  # the look of the latest frames...
    run_frames: int = 0  # ...how many in a row...
    run_since: str | None = None  # ...since when
    reference: Reference = field(default_factory=Reference)
    # The last frame taken when the health is fed alone (a camera with regions: no window to
    # recognise a frame already counted; functions.state.episodes.measure_only). None otherwise.
    last_at: str | None = None
    last_key: str | None = None

    def to_item(self) -> dict[str, Any]:
        ref = self.reference
        last = {"la": self.last_at, "lk": self.last_key} if self.last_at is not None else {}
        return {
            "st": self.status, "t": self.since, "k": self.changes,
            "rl": self.run_look, "rn": self.run_frames, "rt": self.run_since,
            "n": ref.frames, "b": ref.brightness, "c": ref.contrast, "s": ref.log_sharpness, "v": ref.votes,
        } | last  # fmt: skip

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Health:
        return cls(
            status=str(item.get("st", OK)),
            since=item.get("t"),
            changes=int(item.get("k", 0)),
            run_look=str(item.get("rl", OK)),
            run_frames=int(item.get("rn", 0)),
            run_since=item.get("rt"),
            reference=Reference(
                frames=int(item.get("n", 0)),
                brightness=float(item.get("b", 0.0)),
                contrast=float(item.get("c", 0.0)),
                log_sharpness=float(item.get("s", 0.0)),
                votes=str(item.get("v", "")),
            ),
            last_at=item.get("la"),
            last_key=item.get("lk"),
        )


@dataclass(frozen=True)
class HealthStep:
    health: Health
    look: str
    change: dict[str, Any] | None = None  # the event detail when the health changed


def look(measures: FrameHealth, reference: Reference, config: HealthConfig) -> tuple[str, int | None]:
    """What one frame looks like against the reference: (look, fingerprint distance or None)."""
    if measures.brightness < config.dark_brightness:
        return "dark", None
    if measures.contrast < config.covered_contrast:
        return "covered", None
    if reference.frames < config.warmup:
        return OK, None
    if math.log1p(measures.sharpness) < reference.log_sharpness + math.log(config.defocus_ratio):
        return "defocused", None
    distance = fingerprint_distance(measures.fingerprint, reference.fingerprint())
    if distance > config.moved_fraction * len(reference.votes):
        return "moved", distance
    return OK, distance


def observe(
    health: Health, camera_id: str, measures: FrameHealth, captured_at: str, frame: str, config: HealthConfig
) -> HealthStep:
    """``health`` after one frame (capture time ``captured_at``, frame id ``frame``)."""
    seen, distance = look(measures, health.reference, config)
    if seen == health.run_look:
        health = replace(health, run_frames=health.run_frames + 1)
    else:
        health = replace(health, run_look=seen, run_frames=1, run_since=captured_at)
    change = None
    if seen != health.status and health.run_frames >= config.frames_for(seen):
        previous = health.status
        health = replace(health, status=seen, since=health.run_since, changes=health.changes + 1)
        change = {
            "event_id": f"{camera_id}#health#{health.changes}",
            "camera_id": camera_id,
            "previous_health": previous,
            "health": seen,
            "since": health.since,
            "detected_at": captured_at,
            "frames": health.run_frames,
            "frame_key": frame,
            "measures": {
                "brightness": measures.brightness,
                "contrast": measures.contrast,
                "sharpness": measures.sharpness,
                "distance": distance,
            },
            "reference": health.reference.summary(),
        }
    if seen == OK and health.status == OK:
        health = replace(health, reference=learn(health.reference, measures, config))
    return HealthStep(health, seen, change)


def learn(reference: Reference, measures: FrameHealth, config: HealthConfig) -> Reference:
    """The reference with one more healthy frame in it."""
    weight = 1.0 / min(reference.frames + 1, config.horizon)
    bits = bin(int(measures.fingerprint, 16))[2:].zfill(len(measures.fingerprint) * 4)
    if not reference.votes or len(reference.votes) != len(bits):
        votes = "".join(f"{_VOTE_START if b == '1' else _VOTE_START - 1:x}" for b in bits)
    else:
        votes = "".join(
            f"{min(_VOTE_MAX, int(v, 16) + 1) if b == '1' else max(0, int(v, 16) - 1):x}"
            for v, b in zip(reference.votes, bits, strict=True)
        )
    return Reference(
        frames=reference.frames + 1,
        brightness=_towards(reference.brightness, measures.brightness, weight),
        contrast=_towards(reference.contrast, measures.contrast, weight),
        log_sharpness=_towards(reference.log_sharpness, math.log1p(measures.sharpness), weight),
        votes=votes,
    )


def _towards(mean: float, value: float, weight: float) -> float:
    return round(mean + weight * (value - mean), 4)  # 4 decimals: plenty, and a short state item
