"""Near-duplicate groups, so that cross-validation never splits a frame from its copy.

A static camera uploads many almost identical frames; a training folder often holds the same
frame re-encoded, resized or brightened. If one copy lands in a training fold and the other in
the validation fold, the scores measure memory, not generalisation. Cross-validation therefore
uses these groups (StratifiedGroupKFold).

Each image gets a difference hash (imagehash.dhash's algorithm, functions/frames/dhash.py, 16x16 = 256 bits: is each pixel of a
17x16 greyscale thumbnail brighter than its right neighbour?). Two images whose hashes differ
in at most ``max_distance`` bits are linked, and groups are the connected components
(union-find), so a chain of near-copies forms one group.

Default ``max_distance`` = 48 bits (3/16 of 256), measured on synthetic 1280x720 frames loaded
through the real loader (``python -m training.features.neardup`` prints the figures; 90 frames, seed 1234):

* copies of a frame (max over 90 frames): JPEG q60 10 bits, q95 10, PNG 9, resized to half 12,
  resized 1.5x 12, brightened +10% 34, darkened -10% 21. Brightness is the hard case on dark
  night frames, where flat regions make many of dhash's neighbour comparisons nearly ties:
  the 34 is one night frame, the next worst brightened copy is 21 (90th percentile 12).
* distinct frames: min 70 bits over 4005 pairs (1st percentile 98, median 125); within one
  label the min is 87 over 1305 pairs.

The 10% of bits (26) one might pick a priori would miss that night copy. 48 sits inside the
measured gap (34 .. 70), closer to the copies because the two mistakes are not equal: merging
two distinct frames only makes cross-validation a little more pessimistic, while splitting a
frame from its copy leaks it across folds and inflates the scores.

One consequence to know: the same street seen by the same camera with and without a car is
close too (min 1, median 5.5 bits over 10 synthetic scenes), so the frames of a static camera
fall into one group. For cross-validation that is the safe side: folds then test on scenes
the model has not seen, instead of on backgrounds it memorised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from functions.frames.dhash import dhash

HASH_SIZE = 16
DEFAULT_MAX_DISTANCE = 48
_BLOCK_ROWS = 256  # rows of the distance matrix computed at once (bounds memory for large N)


@dataclass(frozen=True)
class NearDuplicateGroups:
    group_ids: np.ndarray  # int64 [N]; groups numbered 0, 1, ... in order of their first image
    merged: int  # images that joined another image's group (N - n_groups)
    n_groups: int


def dhash_bits(images: np.ndarray | Sequence[np.ndarray], *, hash_size: int = HASH_SIZE) -> np.ndarray:
    """bool [N, hash_size * hash_size]: the dhash of each uint8 RGB image."""
    return np.array([dhash(image, hash_size) for image in images], dtype=bool).reshape(
        len(images), hash_size * hash_size
    )


def hamming_distances(bits: np.ndarray, rows: slice | None = None) -> np.ndarray:
    """int [R, N] Hamming distances between the hashes in ``rows`` and all hashes."""
    packed = np.packbits(bits, axis=1)
    block = packed if rows is None else packed[rows]
    return np.bitwise_count(block[:, None, :] ^ packed[None, :, :]).sum(axis=2, dtype=np.int64)


def dhash_groups(
    images: np.ndarray | Sequence[np.ndarray],
    *,
    hash_size: int = HASH_SIZE,
    max_distance: int = DEFAULT_MAX_DISTANCE,
) -> NearDuplicateGroups:
    """Group images whose dhashes are within ``max_distance`` bits (transitively). Deterministic."""
    if len(images) == 0:
        return NearDuplicateGroups(np.zeros(0, np.int64), 0, 0)
    return groups_of_hashes(dhash_bits(images, hash_size=hash_size), max_distance=max_distance)


def groups_of_hashes(bits: np.ndarray, *, max_distance: int = DEFAULT_MAX_DISTANCE) -> NearDuplicateGroups:
    """The groups of :func:`dhash_groups` from hashes already computed (e.g. stored in feature shards)."""
    n = len(bits)
    if n == 0:
        return NearDuplicateGroups(np.zeros(0, np.int64), 0, 0)
    parent = np.arange(n)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving
            i = parent[i]
        return int(i)

    for start in range(0, n, _BLOCK_ROWS):
        distances = hamming_distances(bits, slice(start, min(n, start + _BLOCK_ROWS)))
        for offset, j in zip(*np.nonzero(distances <= max_distance), strict=True):
            i = start + int(offset)
            if i < j:
                root_i, root_j = find(i), find(int(j))
                if root_i != root_j:
                    # the smaller index stays the root: the result does not depend on pair order
                    parent[max(root_i, root_j)] = min(root_i, root_j)

    roots = [find(i) for i in range(n)]
    numbering: dict[int, int] = {}
    group_ids = np.array([numbering.setdefault(root, len(numbering)) for root in roots], dtype=np.int64)
    return NearDuplicateGroups(group_ids=group_ids, merged=n - len(numbering), n_groups=len(numbering))


def join_groups(groups: NearDuplicateGroups, keys: Sequence[str]) -> NearDuplicateGroups:
    """``groups`` with every image sharing a key (e.g. the crops of one frame) in one group.

    The regions of one frame share its light, exposure and noise: a fold that trained on one bay
    of a frame and validated on its neighbour would flatter the model. Deterministic; groups
    numbered in order of their first image, as ``groups_of_hashes`` numbers them.
    """
    n = len(keys)
    if n != len(groups.group_ids):
        raise ValueError(f"join_groups: {n} keys for {len(groups.group_ids)} images")
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        root_i, root_j = find(i), find(j)
        if root_i != root_j:
            parent[max(root_i, root_j)] = min(root_i, root_j)

    first: dict[Any, int] = {}
    for i, (group, key) in enumerate(zip(groups.group_ids.tolist(), keys, strict=True)):
        for tag in (("group", group), ("key", key)):
            union(first.setdefault(tag, i), i)
    numbering: dict[int, int] = {}
    group_ids = np.array([numbering.setdefault(find(i), len(numbering)) for i in range(n)], dtype=np.int64)
    return NearDuplicateGroups(group_ids=group_ids, merged=n - len(numbering), n_groups=len(numbering))


# --- the measurement behind DEFAULT_MAX_DISTANCE ----------------------------------------------


def _copies(jpeg: bytes) -> dict[str, bytes]:
    """The kinds of near-copies a training folder accumulates, made from one frame."""
    import io

    from PIL import ImageEnhance

    frame = Image.open(io.BytesIO(jpeg)).convert("RGB")

    def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, fmt, **options)
        return buffer.getvalue()

    w, h = frame.size
    return {
        "jpeg q60": encode(frame, quality=60),
        "jpeg q95": encode(frame, quality=95),
        "png": encode(frame, "PNG"),
        "brightened +10%": encode(ImageEnhance.Brightness(frame).enhance(1.1), quality=85),
        "darkened -10%": encode(ImageEnhance.Brightness(frame).enhance(0.9), quality=85),
        "resized to half": encode(frame.resize((w // 2, h // 2), Image.Resampling.BILINEAR), quality=85),
        "resized to 1.5x": encode(
            frame.resize((w * 3 // 2, h * 3 // 2), Image.Resampling.BICUBIC), quality=85
        ),
    }


def distance_study(frames_per_label: int = 30, seed: int = 1234) -> dict:
    """Hamming distances of copies of a frame vs distinct frames (synthetic, 1280x720, real loader)."""
    from functions.frames.image_loader import load_image
    from training.data.synthetic import LABELS, frame_jpeg, frame_seed

    frames = [
        (label, frame_jpeg(label, frame_seed(seed, label, i)))
        for label in LABELS
        for i in range(frames_per_label)
    ]
    originals = np.stack([load_image(data, source=f"{label}-{i}") for i, (label, data) in enumerate(frames)])
    bits = dhash_bits(originals)
    distances = hamming_distances(bits)
    labels = np.array([label for label, _ in frames])
    upper = np.triu_indices(len(frames), k=1)
    distinct = distances[upper]
    same_label = distances[upper][labels[upper[0]] == labels[upper[1]]]

    copy_distances: dict[str, list[int]] = {}
    for index, (_, data) in enumerate(frames):
        for kind, copy in _copies(data).items():
            copy_bits = dhash_bits([load_image(copy, source=kind)])
            copy_distances.setdefault(kind, []).append(int((copy_bits[0] != bits[index]).sum()))
    # Same scene (same seed: same street, light and camera) with and without a vehicle: what a
    # static camera uploads all day. Informative: a small vehicle may sit inside the threshold.
    scene = []
    for i in range(frames_per_label // 3):
        scene_seed = frame_seed(seed, "scene", i)
        empty, car = (
            dhash_bits([load_image(frame_jpeg(label, scene_seed), source=label)])[0]
            for label in ("empty", "car")
        )
        scene.append(int((empty != car).sum()))
    return {
        "bits": int(bits.shape[1]),
        "frames": len(frames),
        "distinct_pairs": {
            "n": int(distinct.size),
            "min": int(distinct.min()),
            "p1": float(np.percentile(distinct, 1)),
            "median": float(np.median(distinct)),
        },
        "same_label_pairs": {"n": int(same_label.size), "min": int(same_label.min())},
        "same_scene_car_vs_empty": {"n": len(scene), "min": min(scene), "median": float(np.median(scene))},
        "copies": {kind: {"max": max(d), "mean": float(np.mean(d))} for kind, d in copy_distances.items()},
    }


if __name__ == "__main__":
    import json

    print(json.dumps(distance_study(), indent=2))
