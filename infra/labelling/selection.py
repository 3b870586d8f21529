"""Which frames are worth a person's time: pure functions, no I/O.

* :func:`time_balanced`: candidates spread evenly over a camera's time span, so an hour of
  traffic and a quiet night weigh the same however many frames each produced;
* :func:`farthest_point`: from those, the ones most different from each other (greedy
  farthest-point sampling: each pick is the candidate farthest from everything picked so far);
* :func:`margins`: how close the live model was to answering otherwise (top-1 minus top-2
  probability; 0 = a coin toss), for ``--uncertain``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def time_balanced(items: Sequence[T], times: Sequence[datetime], count: int) -> list[T]:
    """``count`` items (all when there are fewer) nearest to evenly spaced moments of their span.

    The moments are the centres of ``count`` equal slices of [first, last]; each takes the
    nearest item not yet taken, so a burst of frames yields one candidate per slice it covers.
    Ties go to the earlier item. Returned in time order.
    """
    if count <= 0 or not items:
        return []
    order = sorted(range(len(items)), key=lambda i: (times[i], i))
    if len(order) <= count:
        return [items[i] for i in order]
    seconds = np.array([times[i].timestamp() for i in order])
    low, high = seconds[0], seconds[-1]
    targets = low + (np.arange(count) + 0.5) * (high - low) / count
    free = np.ones(len(order), dtype=bool)
    chosen = []
    for target in targets:
        distance = np.where(free, np.abs(seconds - target), np.inf)
        pick = int(np.argmin(distance))
        free[pick] = False
        chosen.append(pick)
    return [items[order[i]] for i in sorted(chosen)]


def farthest_point(vectors: np.ndarray, count: int, *, metric: str = "cosine") -> list[int]:
    """Indices of ``count`` rows of ``vectors``, each the farthest from those picked before it.

    ``metric``: ``cosine`` (model features) or ``hamming`` (dhash bits). The first pick is the
    row farthest from the centroid (the most unusual frame), so the result does not depend on
    the input order except for exact ties (the lower index wins).
    """
    n = len(vectors)
    if count >= n:
        return list(range(n))
    if count <= 0:
        return []
    data = _prepare(vectors, metric)
    centre = data.mean(axis=0, keepdims=True)
    first = int(np.argmax(_distances(data, centre[0], metric)))
    picked = [first]
    nearest = _distances(data, data[first], metric)
    while len(picked) < count:
        nearest[picked] = -np.inf
        pick = int(np.argmax(nearest))
        picked.append(pick)
        nearest = np.minimum(nearest, _distances(data, data[pick], metric))
    return picked


def _prepare(vectors: np.ndarray, metric: str) -> np.ndarray:
    data = np.asarray(vectors, dtype=np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(data, axis=1, keepdims=True)
        return data / np.where(norms == 0, 1.0, norms)
    if metric == "hamming":
        return data
    raise ValueError(f"metric {metric!r}: choose cosine or hamming")


def _distances(data: np.ndarray, point: np.ndarray, metric: str) -> np.ndarray:
    if metric == "cosine":
        return 1.0 - data @ point
    return np.abs(data - point).sum(axis=1)  # bits as 0/1: the Hamming distance


def margins(probabilities: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 probability per row (a one-column model: distance from 0.5, doubled)."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.shape[1] == 1:
        return np.abs(2.0 * p[:, 0] - 1.0)
    top = np.sort(p, axis=1)
    return top[:, -1] - top[:, -2]


def most_uncertain(probabilities: np.ndarray, count: int) -> list[int]:
    """Indices of the ``count`` smallest margins, smallest first (ties: the lower index)."""
    order = np.argsort(margins(probabilities), kind="stable")
    return [int(i) for i in order[:count]]
