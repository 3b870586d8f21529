"""The fine-tuning's stopping rule: which epoch is kept, when the run stops."""

import pytest

from training.fit.stopping import best_epoch, should_stop, smoothed_score


def records(accuracies, losses=None):
    losses = losses or [1.0] * len(accuracies)
    return [{"val_accuracy": a, "val_loss": v} for a, v in zip(accuracies, losses, strict=True)]


def test_a_single_lucky_epoch_wins_unsmoothed_but_not_over_three_epochs():
    history = records([0.50, 0.90, 0.60, 0.70, 0.80, 0.80, 0.70])
    assert best_epoch(history, smoothing=1) == 2
    # Trailing means: 0.5, 0.7, 0.667, 0.733, 0.7, 0.767, 0.767 -> epoch 6 (earliest of equals).
    assert best_epoch(history, smoothing=3) == 6


def test_the_window_is_shorter_at_the_start():
    history = records([0.8, 0.6, 0.7])
    assert smoothed_score(history, 1, 3)[0] == 0.8
    assert smoothed_score(history, 2, 3)[0] == 0.7
    assert best_epoch(history, smoothing=3) == 1


def test_loss_breaks_ties_in_accuracy():
    history = records([0.75, 0.75, 0.75], losses=[0.9, 0.5, 0.8])
    assert best_epoch(history) == 2
    # Smoothed losses: 0.9, 0.7, 0.733 -> still epoch 2.
    assert best_epoch(history, smoothing=3) == 2


def test_accuracies_equal_up_to_float_noise_tie():
    history = records([0.7 + 1e-12, 0.7], losses=[0.6, 0.4])
    assert best_epoch(history) == 2


def test_no_epochs_is_an_error():
    with pytest.raises(ValueError):
        best_epoch([])


@pytest.mark.parametrize(
    ("best", "epoch", "min_epochs", "stop"),
    [
        (1, 5, 1, True),  # patience 4 spent
        (2, 5, 1, False),  # 3 epochs since the best
        (1, 5, 8, False),  # patience spent, but before the minimum
        (1, 8, 8, True),
        (6, 8, 8, False),  # the minimum reached, patience not spent
        (6, 10, 8, True),
    ],
)
def test_stopping_needs_patience_spent_and_the_minimum_run(best, epoch, min_epochs, stop):
    assert should_stop(best, epoch, patience=4, min_epochs=min_epochs) is stop
