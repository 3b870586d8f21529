"""Statistics of the bench: pure functions over lists of measured seconds.

Nothing here measures anything; the harness and the runner collect raw durations and
these functions turn them into the figures that go into results.json, so that the
arithmetic is tested on fixed numbers instead of on timings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

MIB = 1024 * 1024


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks (numpy's default)."""
    if len(samples) == 0:
        raise ValueError("percentile of no samples")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} outside [0, 100]")
    return float(np.percentile(np.asarray(samples, dtype=np.float64), q))


def summarize_ms(seconds: Sequence[float]) -> dict[str, float | int]:
    """Latency summary in milliseconds of durations given in seconds."""
    if len(seconds) == 0:
        raise ValueError("no durations to summarize")
    if any(not math.isfinite(s) or s < 0 for s in seconds):
        raise ValueError("durations must be finite and non-negative")
    ms = [s * 1000.0 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "mean_ms": round(float(np.mean(ms)), 3),
        "min_ms": round(min(ms), 3),
        "max_ms": round(max(ms), 3),
    }


def throughput(frames: int, seconds: float) -> float:
    """Frames per second over a wall-clock span."""
    if frames < 0:
        raise ValueError("frames must be non-negative")
    if seconds <= 0:
        raise ValueError("a throughput needs a positive duration")
    return round(frames / seconds, 3)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None when either is missing or the denominator is zero."""
    if numerator is None or denominator is None or denominator == 0:
        return None
    return round(numerator / denominator, 3)


def median(values: Sequence[float]) -> float:
    if len(values) == 0:
        raise ValueError("median of no values")
    return float(np.median(np.asarray(values, dtype=np.float64)))


def agreement(left: Sequence[str], right: Sequence[str]) -> float:
    """Share of positions where two label lists agree."""
    if len(left) != len(right):
        raise ValueError(f"label lists differ in length ({len(left)} vs {len(right)})")
    if len(left) == 0:
        raise ValueError("agreement of no labels")
    same = sum(1 for a, b in zip(left, right, strict=True) if a == b)
    return round(same / len(left), 6)


def rss_mib(ru_maxrss_kib: int) -> float:
    """Linux reports ru_maxrss in KiB."""
    return round(ru_maxrss_kib / 1024.0, 1)


def share(part: float, whole: float) -> float | None:
    """part / whole as a percentage (None when whole is zero)."""
    if whole == 0:
        return None
    return round(100.0 * part / whole, 1)
