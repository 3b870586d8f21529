"""Early stopping for fine-tuning: which epoch to keep, and when to stop (pure logic).

A fold holds back ~40 frames: one frame is 2.5 points of validation accuracy, so a single
epoch's value is noisy and the best epoch it picks jumps (demo recipe 4, three folds: 15, 9, 10
in a good run; 5, 7, 19 in a weak one). Two knobs make the choice less noisy:

* ``smoothing``: an epoch is scored by the mean of its own and the previous ``smoothing - 1``
  epochs' validation accuracy (and loss, the tie-break), a trailing window, so the decision is
  known when the epoch ends and its weights can be kept then;
* ``min_epochs``: stopping cannot trigger before this many epochs (the learning rate is still
  high early on, and a lucky early epoch would otherwise end the run after ``patience`` more).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def smoothed_score(records: Sequence[dict[str, float]], epoch: int, smoothing: int) -> tuple[float, float]:
    """(mean validation accuracy, -mean validation loss) of ``epoch`` (1-based) and the
    ``smoothing - 1`` epochs before it (fewer at the start)."""
    window = records[max(0, epoch - smoothing) : epoch]
    accuracy = float(np.mean([record["val_accuracy"] for record in window]))
    loss = float(np.mean([record["val_loss"] for record in window]))
    # Rounded: accuracies that differ only by float noise tie, and the loss decides.
    return round(accuracy, 6), -loss


def best_epoch(records: Sequence[dict[str, float]], smoothing: int = 1) -> int:
    """The 1-based epoch with the best smoothed score; the earliest of equals."""
    if not records:
        raise ValueError("no epochs to choose from")
    scores = [smoothed_score(records, epoch, smoothing) for epoch in range(1, len(records) + 1)]
    return 1 + max(range(len(scores)), key=lambda i: (scores[i], -i))


def should_stop(best: int, epoch: int, *, patience: int, min_epochs: int = 1) -> bool:
    """Stop after ``epoch`` when ``patience`` epochs have passed without a better one, and at
    least ``min_epochs`` have run."""
    return epoch >= min_epochs and epoch - best >= patience
