"""Crops for labelling and training: the function's crop, written losslessly; a model's labelled crops."""

from __future__ import annotations

import json

import numpy as np
import pytest

from functions.frames.image_loader import load_image, load_regions
from functions.frames.regions import parse_camera_config
from training.data.crops import write_crops
from training.data.label_files import DatasetError
from training.data.region_dataset import load_region_dataset
from training.data.synthetic_regions import CAMERAS_FILENAME, LABELS_FILENAME, write_regions_dataset


@pytest.fixture(scope="module")
def lot(tmp_path_factory):
    root = tmp_path_factory.mktemp("lot")
    frames = write_regions_dataset(root, 4, cameras=2, seed=9)  # 1280x720: the draft scale matters
    return root, frames


def _camera_crops(root, frame):
    config = json.loads((root / CAMERAS_FILENAME).read_text())["cameras"][frame.camera_id]
    regions = parse_camera_config(config, camera_id=frame.camera_id, source="t").regions
    crops = load_regions((root / frame.key).read_bytes(), [r.box for r in regions], source=frame.key)
    return {region.name: crop for region, crop in zip(regions, crops, strict=True)}


def test_labelled_crops_go_to_label_folders_and_read_back_to_the_same_pixels(lot, tmp_path):
    root, frames = lot
    written = write_crops(
        str(root),
        str(root / CAMERAS_FILENAME),
        tmp_path,
        labels_file=str(root / LABELS_FILENAME),
        progress=False,
    )
    expected: dict[str, int] = {}
    for frame in frames:
        for region, label in frame.states.items():
            folder = f"{'gate' if region == 'gate' else 'bay'}/{label}"
            expected[folder] = expected.get(folder, 0) + 1
    assert written.counts == dict(sorted(expected.items())) and written.frames == 8 and written.skipped == []
    frame = frames[5]
    crops = _camera_crops(root, frame)
    stem = frame.key.replace("/", "__")[: -len(".jpg")]
    png = tmp_path / "bay" / frame.states["bay3"] / f"{stem}-bay3.png"
    # train on these folders = train on the function's crops, to the pixel
    assert np.array_equal(load_image(png.read_bytes(), source=str(png)), crops["bay3"])


def test_without_labels_every_region_goes_to_its_unlabelled_folder(lot, tmp_path):
    root, _ = lot
    (root / "lot-01" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a whole jpeg")
    try:
        written = write_crops(
            str(root), str(root / CAMERAS_FILENAME), tmp_path, model_name="gate", progress=False
        )
    finally:
        (root / "lot-01" / "broken.jpg").unlink()
    assert written.counts == {"gate/_unlabeled/gate": 8}
    assert len(written.skipped) == 1 and "broken.jpg" in written.skipped[0]


def test_a_models_dataset_is_its_labelled_crops_with_their_frames(lot):
    root, frames = lot
    dataset = load_region_dataset(
        str(root), str(root / CAMERAS_FILENAME), str(root / LABELS_FILENAME), "bay", progress=False
    )
    assert len(dataset) == 8 * 8 and dataset.labels == ["empty", "occupied"]
    assert dataset.summary()["model_name"] == "bay" and dataset.summary()["frames"] == 8
    by_uri = {item.uri: item for item in dataset.items}
    frame = frames[2]
    item = by_uri[f"{(root / frame.key).resolve()}#bay8"]
    assert item.label == frame.states["bay8"]
    assert np.array_equal(item.pixels, _camera_crops(root, frame)["bay8"])
    assert dataset.same_fold_keys() == [uri.rsplit("#", 1)[0] for uri in sorted(by_uri)]


def test_a_row_naming_a_region_its_camera_lacks_is_refused(lot, tmp_path):
    root, _ = lot
    labels = tmp_path / "labels.csv"
    labels.write_text("lot-01/lot-01-9-00000.jpg,bay9,empty\n")
    with pytest.raises(
        DatasetError, match="labels region\\(s\\) bay9, which its camera lot-01 does not have"
    ):
        load_region_dataset(str(root), str(root / CAMERAS_FILENAME), str(labels), "bay", progress=False)
    with pytest.raises(DatasetError, match="say which one to train with --model-name"):
        load_region_dataset(str(root), str(root / CAMERAS_FILENAME), str(labels), None, progress=False)
    with pytest.raises(DatasetError, match="no region uses the model 'door'"):
        load_region_dataset(str(root), str(root / CAMERAS_FILENAME), str(labels), "door", progress=False)
