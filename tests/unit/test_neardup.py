"""training.features.neardup: copies of a frame share a group, distinct frames do not."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from functions.frames.image_loader import load_image
from tests.fixtures.images import encode
from training.data.synthetic import frame_jpeg, frame_seed
from training.features.neardup import DEFAULT_MAX_DISTANCE, dhash_bits, dhash_groups, hamming_distances


def loaded(data: bytes, name: str) -> np.ndarray:
    return load_image(data, source=name)


@pytest.fixture(scope="module")
def frames_and_copies() -> tuple[list[str], np.ndarray]:
    """Frame A and three near-copies of it, then three distinct frames (one per label)."""
    a = frame_jpeg("car", frame_seed(11, "car", 0))
    image = Image.open(io.BytesIO(a))
    copies = {
        "a-requality": encode(image, "JPEG", quality=55),
        "a-brighter": encode(ImageEnhance.Brightness(image).enhance(1.1), "JPEG", quality=85),
        "a-resized": encode(image.resize((960, 540), Image.Resampling.BILINEAR), "PNG"),
    }
    distinct = {
        f"{label}-other": frame_jpeg(label, frame_seed(12, label, 0)) for label in ("bus", "car", "empty")
    }
    named = {"a": a, **copies, **distinct}
    return list(named), np.stack([loaded(data, name) for name, data in named.items()])


def test_copies_join_the_original_and_distinct_frames_stay_apart(frames_and_copies):
    names, images = frames_and_copies
    groups = dhash_groups(images)
    assert groups.group_ids.tolist() == [0, 0, 0, 0, 1, 2, 3]
    assert groups.merged == 3
    assert groups.n_groups == 4
    assert groups.group_ids.dtype == np.int64


def test_copies_are_well_inside_and_distinct_frames_well_outside_the_threshold(frames_and_copies):
    _, images = frames_and_copies
    distances = hamming_distances(dhash_bits(images))
    assert distances.shape == (7, 7)
    assert np.array_equal(distances, distances.T) and not np.diag(distances).any()
    assert distances[0, 1:4].max() < DEFAULT_MAX_DISTANCE
    assert distances[4:, :].min(initial=999, where=~np.eye(7, dtype=bool)[4:]) > DEFAULT_MAX_DISTANCE + 16


def test_groups_do_not_depend_on_input_order(frames_and_copies):
    _, images = frames_and_copies
    order = np.array([5, 2, 6, 0, 4, 3, 1])
    reordered = dhash_groups(images[order])
    # same partition: two images share a group in one order iff they do in the other
    original = dhash_groups(images).group_ids[order]
    same = original[:, None] == original[None, :]
    assert np.array_equal(same, reordered.group_ids[:, None] == reordered.group_ids[None, :])
    assert reordered.group_ids.tolist() == [0, 1, 2, 1, 3, 1, 1]  # numbered by first appearance


def image_with_dhash(bits: np.ndarray) -> np.ndarray:
    """A 17x16 grey image whose 16x16 dhash is exactly ``bits`` (dhash compares each pixel with
    its right neighbour on a 17x16 thumbnail; at that size its resize is the identity)."""
    steps = np.where(bits, 7, -7)
    rows = np.concatenate([np.full((16, 1), 128), 128 + np.cumsum(steps, axis=1)], axis=1)
    return np.repeat(rows.astype(np.uint8)[:, :, None], 3, axis=2)


def test_image_with_dhash_really_has_that_hash():
    bits = np.random.default_rng(0).random((16, 16)) < 0.5
    assert np.array_equal(dhash_bits([image_with_dhash(bits)])[0], bits.ravel())


def test_groups_are_transitive():
    # b is 10 bits from a and 10 from c; a and c are 20 apart: still one group (a chain of copies)
    a = np.zeros((16, 16), bool)
    b = a.copy()
    b.flat[:10] = True
    c = b.copy()
    c.flat[10:20] = True
    far = np.ones((16, 16), bool)
    images = [image_with_dhash(x) for x in (a, far, c, b)]
    groups = dhash_groups(images, max_distance=10)
    assert groups.group_ids.tolist() == [0, 1, 0, 0]
    assert (groups.merged, groups.n_groups) == (2, 2)
    assert dhash_groups(images, max_distance=9).group_ids.tolist() == [0, 1, 2, 3]


def test_exact_duplicates_only_at_distance_zero(frames_and_copies):
    _, images = frames_and_copies
    with_duplicate = np.concatenate([images, images[4:5]])
    groups = dhash_groups(with_duplicate, max_distance=0)
    assert groups.group_ids.tolist() == [0, 1, 2, 3, 4, 5, 6, 4]
    assert groups.merged == 1


def test_empty_input():
    groups = dhash_groups(np.zeros((0, 224, 224, 3), np.uint8))
    assert (groups.group_ids.size, groups.merged, groups.n_groups) == (0, 0, 0)


def test_hash_size_sets_the_number_of_bits(frames_and_copies):
    _, images = frames_and_copies
    assert dhash_bits(images[:2]).shape == (2, 256)
    assert dhash_bits(images[:2], hash_size=8).shape == (2, 64)


def test_the_hardest_brightened_copy_still_joins_its_original():
    # Dark frames are the hard case for DEFAULT_MAX_DISTANCE: flat regions make many dhash
    # comparisons near-ties, so +10% brightness flips far more bits than re-encoding does.
    # Search 30 seeded empty frames for the hardest copy rather than pinning one frame's pixels.
    hardest = None
    for index in range(30):
        original = frame_jpeg("empty", frame_seed(1234, "empty", index))
        brighter = encode(
            ImageEnhance.Brightness(Image.open(io.BytesIO(original))).enhance(1.1), "JPEG", quality=85
        )
        images = np.stack([loaded(original, "original"), loaded(brighter, "brighter")])
        distance = int(hamming_distances(dhash_bits(images))[0, 1])
        if hardest is None or distance > hardest[0]:
            hardest = (distance, images)
    distance, images = hardest
    assert images[0].mean() < 60  # the hardest copy is a dark frame
    assert 26 < distance <= DEFAULT_MAX_DISTANCE  # a 10%-of-bits threshold would have split them
    assert dhash_groups(images).group_ids.tolist() == [0, 0]


def test_functions_dhash_is_bit_identical_to_imagehash():
    import imagehash

    from functions.frames.dhash import dhash, from_hex, to_hex

    rng = np.random.default_rng(7)
    images = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(5)]
    images.append(np.zeros((224, 224, 3), np.uint8))
    for image in images:
        reference = imagehash.dhash(Image.fromarray(image), hash_size=16).hash.ravel()
        assert np.array_equal(dhash(image), reference)
        assert np.array_equal(from_hex(to_hex(dhash(image))), reference)
