"""Region training data, pure parts: labels per region, the cameras' regions, a frame's crops in one fold."""

from __future__ import annotations

import numpy as np
import pytest

from functions.frames.regions import Box
from training.data.label_files import DatasetError
from training.data.region_labels import (
    ANY_CAMERA,
    RegionLabel,
    camera_of,
    parse_cameras_config,
    parse_region_labels,
)
from training.features.neardup import NearDuplicateGroups, join_groups
from training.fit.folds import grouped_folds

TWO_BAYS = {"regions": [{"name": "bay1", "box": [0, 0, 0.5, 1], "model": "bay"},
                        {"name": "gate", "box": [0.5, 0, 1, 1], "model": "gate"}]}  # fmt: skip


def test_jsonl_and_csv_rows_read_alike():
    jsonl = (
        '{"key": "lot-01/a.jpg", "region": "bay1", "label": "occupied"}\n\n'
        '{"path": "lot-01/a.jpg", "region": "gate", "label": "open"}\n'
    )
    csv_text = "key,region,label\nlot-01/a.jpg,bay1,occupied\nlot-01/a.jpg, gate ,open\n"
    expected = [RegionLabel("lot-01/a.jpg", "bay1", "occupied"), RegionLabel("lot-01/a.jpg", "gate", "open")]
    assert parse_region_labels(jsonl, "l.jsonl") == expected
    assert parse_region_labels(csv_text, "l.csv") == expected
    assert parse_region_labels("lot-01/a.jpg,bay1,occupied\n", "no-header.csv") == expected[:1]


@pytest.mark.parametrize(
    ("text", "name", "says"),
    [
        ('{"key": "a.jpg", "region": "bay1"}\n', "l.jsonl", "l.jsonl line 1: expected"),
        ("not json\n", "l.jsonl", "l.jsonl line 1: expected"),
        ("a.jpg,bay1\n", "l.csv", "l.csv line 1: 2 columns"),
        ("a.jpg,,occupied\n", "l.csv", "l.csv line 1: empty region"),
        ("a.jpg,bay1,occupied\na.jpg,bay1,empty\n", "l.csv", "line 2: a.jpg region bay1 is labelled again (first on line 1)"),
        ("\n\n", "l.csv", "no labelled regions"),
    ],
)  # fmt: skip
def test_bad_rows_name_the_file_and_line(text, name, says):
    with pytest.raises(DatasetError, match=says.replace("(", r"\(").replace(")", r"\)")):
        parse_region_labels(text, name)


def test_one_camera_or_many():
    single = parse_cameras_config(TWO_BAYS, "regions.json")
    assert list(single) == [ANY_CAMERA]
    assert camera_of("anything/x.jpg", single, "s") is single[ANY_CAMERA]
    many = parse_cameras_config({"cameras": {"lot-01": TWO_BAYS, "lot-02": {"regions": []}}}, "cameras.json")
    assert camera_of("lot-01/x.jpg", many, "s").regions[0].box == Box(0, 0, 0.5, 1)
    assert camera_of("frames/lot-02/x.jpg", many, "s").effective_regions()[0].name == "default"
    assert camera_of("s3://bucket/frames/lot-01/x.jpg", many, "s").camera_id == "lot-01"
    with pytest.raises(DatasetError, match="frame lot-03/x.jpg belongs to no camera"):
        camera_of("lot-03/x.jpg", many, "labels.jsonl")


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ([1, 2], "expected a JSON object"),
        ({"cameras": {}}, "'cameras' must map"),
        ({"regions": [{"name": "bay1", "box": [0, 0, 1.5, 1]}]}, "bay1"),
        ({"cameras": {"lot-01": {"regions": [{"name": "Bad Name", "box": [0, 0, 1, 1]}]}}}, "camera lot-01"),
    ],
)
def test_bad_regions_configs_are_refused_with_their_source(data, says):
    with pytest.raises(DatasetError, match=says):
        parse_cameras_config(data, "cameras.json")


def test_join_groups_keeps_a_frames_crops_together_and_honours_near_duplicates():
    # crops 0-2 of frame a, 3-5 of frame b, 6-7 of frame c; crop 2 is a near-duplicate of crop 6
    groups = NearDuplicateGroups(np.array([0, 1, 2, 3, 4, 5, 6, 2]), merged=1, n_groups=7)
    frames = ["a", "a", "a", "b", "b", "b", "c", "c"]
    joined = join_groups(groups, frames)
    assert joined.group_ids.tolist() == [0, 0, 0, 1, 1, 1, 0, 0]  # a and c joined through crops 2 and 7
    assert (joined.n_groups, joined.merged) == (2, 6)
    with pytest.raises(ValueError, match="3 keys for 8 images"):
        join_groups(groups, frames[:3])


def test_grouped_folds_never_split_a_frames_crops():
    rng = np.random.default_rng(3)
    frames = [f"frame-{i // 8}" for i in range(8 * 30)]  # 30 frames, 8 bays each
    labels = rng.integers(0, 2, size=len(frames))
    crops = NearDuplicateGroups(np.arange(len(frames)), merged=0, n_groups=len(frames))
    joined = join_groups(crops, frames)
    for train, valid in grouped_folds(labels, joined.group_ids, folds=5, seed=0):
        assert not {frames[i] for i in train} & {frames[i] for i in valid}
        assert len({frames[i] for i in valid}) * 8 == len(valid)  # whole frames only
