"""Several training sources combine; a review export's _unlabeled/ folder is not a label."""

from __future__ import annotations

import shutil

import pytest

from tests.unit.test_dataset_local import copy_frames
from training.data.dataset import load_dataset
from training.data.loading import UNLABELED_FOLDER, DatasetError


def test_original_data_and_a_review_export_combine(tmp_path, synthetic_frames_dir):
    original = tmp_path / "original"
    copy_frames(synthetic_frames_dir, original, {"bus": 2, "car": 2, "empty": 2})
    review = tmp_path / "review"
    # A person sorted one exported frame into "bus"; two still wait under _unlabeled/<camera>/.
    (review / "bus").mkdir(parents=True, exist_ok=True)
    sorted_frame = sorted((synthetic_frames_dir / "bus").glob("*.jpg"))[-1]
    shutil.copy(sorted_frame, review / "bus" / "reviewed.jpg")
    waiting = review / UNLABELED_FOLDER / "cam-01"
    waiting.mkdir(parents=True)
    for path in sorted((synthetic_frames_dir / "car").glob("*.jpg"))[-2:]:
        shutil.copy(path, waiting / path.name)
    (review / UNLABELED_FOLDER / "guesses.csv").write_text("key,label\n")

    dataset = load_dataset([str(original), str(review)], progress=False)

    assert dataset.labels == ["bus", "car", "empty"]
    assert dataset.counts() == {"bus": 3, "car": 2, "empty": 2}
    assert str(review / "bus" / "reviewed.jpg") in {item.uri for item in dataset.items}
    assert not [item for item in dataset.items if UNLABELED_FOLDER in item.uri]
    assert dataset.ignored_files == 3  # two waiting frames + the CSV
    assert dataset.source == f"{original} + {review}"


def test_a_missing_second_source_is_named(tmp_path, synthetic_frames_dir):
    original = tmp_path / "original"
    copy_frames(synthetic_frames_dir, original, {"bus": 2, "car": 2})
    with pytest.raises(DatasetError, match="nowhere"):
        load_dataset([str(original), str(tmp_path / "nowhere")], progress=False)
