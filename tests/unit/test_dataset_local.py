"""training.data.dataset on local folders: labels, extensions, skipped files, clear errors."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from functions.frames.image_loader import load_image
from training.data.dataset import Dataset, load_dataset
from training.data.loading import DatasetError, parse_s3_uri


def copy_frames(src: Path, dst: Path, per_label: dict[str, int]) -> dict[str, list[Path]]:
    """Copy the first N synthetic frames of each label from ``src`` into ``dst/<label>/``."""
    copied = {}
    for label, count in per_label.items():
        (dst / label).mkdir(parents=True, exist_ok=True)
        copied[label] = []
        for path in sorted((src / label).glob("*.jpg"))[:count]:
            copied[label].append(Path(shutil.copy(path, dst / label / path.name)))
    return copied


@pytest.fixture
def messy_folder(tmp_path, synthetic_frames_dir) -> Path:
    """Three labels with mixed-case extensions, a nested folder, junk and broken files."""
    root = tmp_path / "frames"
    copied = copy_frames(synthetic_frames_dir, root, {"bus": 3, "car": 3, "empty": 3})
    copied["bus"][0].rename(copied["bus"][0].with_suffix(".JPG"))
    copied["car"][0].rename(copied["car"][0].with_suffix(".Jpeg"))
    (root / "empty" / "night").mkdir()
    copied["empty"][0].rename(root / "empty" / "night" / "deep.jpeg")
    good = copied["car"][1].read_bytes()
    (root / "car" / "half.jpg").write_bytes(good[: len(good) // 2])  # truncated upload
    (root / "car" / "notes.png").write_bytes(b"not a picture\n")  # text behind an image name
    (root / "bus" / "zero.jpg").write_bytes(b"")
    (root / "bus" / "README.txt").write_text("frames from camera 7\n")  # ignored: not an image name
    (root / "bus" / ".DS_Store").write_bytes(b"\x00\x01")  # ignored: hidden
    (root / "loose.jpg").write_bytes(good)  # ignored: directly under the root, no label
    return root


def test_labels_items_and_summary(messy_folder):
    dataset = load_dataset(str(messy_folder), progress=False, max_workers=3)
    assert isinstance(dataset, Dataset)
    assert dataset.labels == ["bus", "car", "empty"]
    assert dataset.counts() == {"bus": 3, "car": 3, "empty": 3}
    assert dataset.summary() == {
        "source": str(messy_folder),
        "labels": ["bus", "car", "empty"],
        "per_label": {"bus": 3, "car": 3, "empty": 3},
        "total": 9,
        "skipped": 3,
        "skipped_reasons": {"empty": 1, "not_jpeg_or_png": 1, "truncated_or_corrupt": 1},
        "ignored_files": 3,
    }
    names = {Path(item.uri).relative_to(messy_folder).as_posix() for item in dataset.items}
    assert "empty/night/deep.jpeg" in names  # label = first folder, however deep the file is
    assert any(name.endswith(".JPG") for name in names) and any(name.endswith(".Jpeg") for name in names)


def test_skipped_files_say_why_and_where(messy_folder):
    skipped = {Path(s.uri).name: s for s in load_dataset(str(messy_folder), progress=False).skipped}
    assert sorted(skipped) == ["half.jpg", "notes.png", "zero.jpg"]
    assert skipped["half.jpg"].reason == "truncated_or_corrupt"
    assert skipped["notes.png"].reason == "not_jpeg_or_png"
    assert skipped["zero.jpg"].reason == "empty"
    assert skipped["half.jpg"].label == "car"
    for item in skipped.values():
        assert item.uri in item.detail


def test_items_are_sorted_hashed_and_loaded_with_the_shared_loader(messy_folder):
    dataset = load_dataset(str(messy_folder), progress=False)
    uris = [item.uri for item in dataset.items]
    assert uris == sorted(uris)
    for item in dataset.items:
        data = Path(item.uri).read_bytes()
        assert item.sha256 == hashlib.sha256(data).hexdigest()
        assert np.array_equal(item.pixels, load_image(data, source=item.uri))
        assert item.label == Path(item.uri).relative_to(messy_folder).parts[0]
    assert dataset.pixels().shape == (9, 224, 224, 3)
    assert dataset.targets().tolist() == [dataset.labels.index(item.label) for item in dataset.items]


def test_same_folder_same_dataset_whatever_the_thread_count(synthetic_frames_dir):
    one = load_dataset(str(synthetic_frames_dir), progress=False, max_workers=1)
    four = load_dataset(str(synthetic_frames_dir), progress=False, max_workers=4)
    assert [i.uri for i in one.items] == [i.uri for i in four.items]
    assert np.array_equal(one.pixels(), four.pixels())
    assert len(one) == 36


def test_full_decode_option(synthetic_frames_dir, synthetic_dataset):
    full = load_dataset(str(synthetic_frames_dir), progress=False, draft=False)
    assert full.sha256s() == synthetic_dataset.sha256s()
    assert np.abs(full.pixels().astype(int) - synthetic_dataset.pixels()).mean() < 3


def test_too_few_images_for_a_label_names_the_label(tmp_path, synthetic_frames_dir):
    root = tmp_path / "frames"
    copy_frames(synthetic_frames_dir, root, {"bus": 3, "car": 1})
    (root / "car" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut")
    with pytest.raises(DatasetError) as error:
        load_dataset(str(root), min_per_label=2, progress=False)
    message = str(error.value)
    assert "'car'" in message and "1 usable image" in message and "1 more were skipped" in message
    assert "at least 2" in message
    assert load_dataset(str(root), min_per_label=1, progress=False).counts() == {"bus": 3, "car": 1}


def test_a_label_whose_images_are_all_broken_still_counts_as_a_label(tmp_path, synthetic_frames_dir):
    root = tmp_path / "frames"
    copy_frames(synthetic_frames_dir, root, {"bus": 2})
    (root / "car").mkdir()
    (root / "car" / "a.jpg").write_bytes(b"")
    with pytest.raises(DatasetError, match="label 'car' has 0 usable"):
        load_dataset(str(root), progress=False)


def test_fewer_than_two_labels(tmp_path, synthetic_frames_dir):
    root = tmp_path / "frames"
    copy_frames(synthetic_frames_dir, root, {"bus": 3})
    with pytest.raises(DatasetError, match=r"1 label folder\(s\) \(bus\).*at least 2"):
        load_dataset(str(root), progress=False)


@pytest.mark.parametrize("case", ["missing", "file", "no-images"])
def test_unusable_sources(tmp_path, case):
    if case == "missing":
        source = tmp_path / "nowhere"
        expected = "no such folder"
    elif case == "file":
        source = tmp_path / "a.jpg"
        source.write_bytes(b"x")
        expected = "not a folder"
    else:
        source = tmp_path / "frames"
        (source / "bus").mkdir(parents=True)
        (source / "bus" / "list.csv").write_text("a,b\n")
        expected = r"no \.jpg/\.jpeg/\.png images.*1 other file"
    with pytest.raises(DatasetError, match=expected) as error:
        load_dataset(str(source), progress=False)
    assert str(source) in str(error.value)


def test_progress_bar_does_not_change_the_result(synthetic_frames_dir, synthetic_dataset):
    with_bar = load_dataset(str(synthetic_frames_dir), progress=True)
    assert with_bar.summary() == synthetic_dataset.summary()


def test_parse_s3_uri():
    assert parse_s3_uri("s3://b/train") == ("b", "train/")
    assert parse_s3_uri("s3://b/train/") == ("b", "train/")
    assert parse_s3_uri("s3://b") == ("b", "")
    with pytest.raises(DatasetError, match="no bucket"):
        parse_s3_uri("s3:///train/")
