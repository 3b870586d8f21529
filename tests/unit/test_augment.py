"""Augmented views for fine-tuning: deterministic, the frame itself for view 0, fixed-camera ranges."""

from __future__ import annotations

import numpy as np
import pytest

from training.fit.augment import DEFAULT_AUGMENTATION, Augmentation, augmented_view


@pytest.fixture
def frame() -> np.ndarray:
    rng = np.random.default_rng(7)
    pixels = rng.integers(40, 216, size=(224, 224, 3), dtype=np.uint8)
    pixels[:, :112] //= 2  # a dark left half: a flip is visible
    return pixels


def test_view_zero_is_the_frame_itself(frame):
    assert augmented_view(frame, seed=3, view=0) is frame


def test_a_view_depends_only_on_pixels_seed_and_view(frame):
    first = augmented_view(frame, seed=3, view=2)
    again = augmented_view(frame.copy(), seed=3, view=2)
    other_view = augmented_view(frame, seed=3, view=1)
    other_seed = augmented_view(frame, seed=4, view=2)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other_view)
    assert not np.array_equal(first, other_seed)
    assert first.dtype == np.uint8 and first.shape == frame.shape


def test_views_stay_within_the_recipe_ranges(frame):
    """Brightness x contrast x colour keep the mean within their combined range; flips happen about half the time."""
    views = [augmented_view(frame, seed=11, view=v) for v in range(1, 81)]
    ratios = np.array([view.mean() / frame.mean() for view in views])
    a = DEFAULT_AUGMENTATION
    assert ratios.min() > (1 - a.brightness) * (1 - a.colour) - 0.05
    assert ratios.max() < (1 + a.brightness) * (1 + a.colour) + 0.05
    # The dark half moves to the right on a flip (a crop keeps >= 80 % of the width).
    flipped = sum(view[:, 180:].mean() < view[:, :44].mean() for view in views)
    assert 25 <= flipped <= 55


def test_no_augmentation_recipe_keeps_the_frame():
    still = Augmentation(
        flip_probability=0.0, min_scale=1.0, aspect_jitter=0.0, brightness=0.0, contrast=0.0, colour=0.0
    )
    pixels = np.random.default_rng(1).integers(0, 256, size=(32, 48, 3), dtype=np.uint8)
    assert np.array_equal(augmented_view(pixels, seed=0, view=5, augmentation=still), pixels)


def test_the_recipe_key_changes_with_any_setting():
    assert DEFAULT_AUGMENTATION.key() != Augmentation(brightness=0.3).key()
    assert DEFAULT_AUGMENTATION.key() == Augmentation().key()
