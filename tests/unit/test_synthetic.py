"""training.data.synthetic: seeded street-camera frames and the dataset folder layout."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from functions.frames.image_format import sniff_format
from training.data.synthetic import LABELS, frame_jpeg, frame_seed, render_frame, write_dataset


def test_labels():
    assert LABELS == ("bus", "car", "empty")


@pytest.mark.parametrize("label", LABELS)
def test_same_seed_same_bytes(label):
    assert frame_jpeg(label, 42) == frame_jpeg(label, 42)


def test_different_seeds_and_labels_differ():
    frames = {frame_jpeg(label, seed) for label in LABELS for seed in (1, 2)}
    assert len(frames) == 6


def test_frame_is_a_1280x720_rgb_jpeg():
    data = frame_jpeg("car", 3)
    assert sniff_format(data) == "jpeg"
    image = Image.open(io.BytesIO(data))
    assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (1280, 720))
    assert Image.open(io.BytesIO(frame_jpeg("car", 3, width=320, height=180))).size == (320, 180)


def test_render_frame_uses_only_the_generator_passed_in():
    np.random.seed(0)  # global state must not matter
    first = np.asarray(render_frame("bus", np.random.default_rng(5), 320, 180))
    np.random.seed(1)
    second = np.asarray(render_frame("bus", np.random.default_rng(5), 320, 180))
    assert np.array_equal(first, second)


def vehicle_mask(label: str, seed: int) -> np.ndarray:
    """Pixels where the ``label`` frame differs from the empty frame of the same seed."""
    empty = np.asarray(render_frame("empty", np.random.default_rng(seed)))
    with_vehicle = np.asarray(render_frame(label, np.random.default_rng(seed)))
    return (with_vehicle != empty).any(axis=2)


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask)
    return rows.min(), rows.max() + 1, cols.min(), cols.max() + 1


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_one_seed_is_one_street_and_only_the_vehicle_differs(seed):
    # Same seed: same street, light and noise for every label; the difference is one compact
    # object (the vehicle), and a bus covers clearly more of the frame than a car.
    areas = {}
    for label in ("bus", "car"):
        mask = vehicle_mask(label, seed)
        top, bottom, left, right = bounding_box(mask)
        outside = mask.copy()
        outside[top:bottom, left:right] = False
        assert not outside.any()
        assert 0.003 < mask.mean() < 0.5
        areas[label] = mask.sum()
    assert areas["bus"] > 1.5 * areas["car"]


def test_bus_and_car_differ_in_shape_not_only_colour():
    # Over a handful of seeds, a bus stands about twice as tall in the frame as a car (~3 m
    # against ~1.5 m), at a traffic camera's scale: vehicles come close, so a bus spans a third
    # to a half of the frame width and a car a fifth to a third (a little more with its shadow).
    heights = {label: [] for label in ("bus", "car")}
    widths = {label: [] for label in ("bus", "car")}
    for seed in range(8):
        for label in heights:
            mask = vehicle_mask(label, seed)
            top, bottom, left, right = bounding_box(mask)
            heights[label].append((bottom - top) / mask.shape[0])
            widths[label].append((right - left) / mask.shape[1])
    assert np.median(heights["bus"]) > 1.6 * np.median(heights["car"])
    assert 0.3 < np.median(widths["bus"]) < 0.55
    assert 0.18 < np.median(widths["car"]) < 0.4


def test_unknown_label():
    with pytest.raises(ValueError, match="truck"):
        render_frame("truck", np.random.default_rng(0))
    with pytest.raises(ValueError, match="truck"):
        write_dataset("/nonexistent", {"truck": 1})


def test_frame_seed_is_stable_across_processes():
    # crc32 of the label, not hash(): these numbers must never change (datasets are named by seed)
    assert frame_seed(0, "bus", 0) == 209412144
    assert frame_seed(7, "empty", 3) == 2996345596
    assert len({frame_seed(0, label, i) for label in LABELS for i in range(50)}) == 150


def test_write_dataset_layout(tmp_path):
    counts = write_dataset(tmp_path / "data", {"bus": 2, "empty": 1}, seed=3, width=320, height=180)
    assert counts == {"bus": 2, "empty": 1}
    files = sorted(
        p.relative_to(tmp_path / "data").as_posix() for p in (tmp_path / "data").rglob("*") if p.is_file()
    )
    assert files == ["bus/bus-3-00000.jpg", "bus/bus-3-00001.jpg", "empty/empty-3-00000.jpg"]
    written = (tmp_path / "data" / "bus" / "bus-3-00001.jpg").read_bytes()
    assert written == frame_jpeg("bus", frame_seed(3, "bus", 1), 320, 180)


def test_write_dataset_is_deterministic_and_int_means_every_label(tmp_path):
    assert write_dataset(tmp_path / "a", 1, seed=9, width=160, height=90) == {"bus": 1, "car": 1, "empty": 1}
    write_dataset(tmp_path / "b", 1, seed=9, width=160, height=90)
    for label in LABELS:
        name = f"{label}/{label}-9-00000.jpg"
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
