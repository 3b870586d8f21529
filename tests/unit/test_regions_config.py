"""The regions configuration (functions/frames/regions.py) and the one crop (load_regions)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from functions.frames.image_loader import load_image, load_regions
from functions.frames.regions import (
    DEFAULT_REGIONS,
    WHOLE_FRAME,
    Box,
    CameraConfig,
    RegionConfigError,
    camera_config_to_dict,
    draft_reduction,
    parse_camera_config,
)

CONFIG = {
    "regions": [
        {"name": "bay1", "box": [0.0, 0.5, 0.25, 1.0], "model": "bay"},
        {"name": "gate", "box": [0.6, 0.1, 0.9, 0.6], "model": "gate", "smoothing": {"k": 3}},
    ]
}


def test_a_valid_configuration_round_trips():
    config = parse_camera_config(CONFIG, camera_id="cam-01", known_models={"default", "bay", "gate"})
    assert [r.name for r in config.regions] == ["bay1", "gate"]
    assert config.regions[0].box == Box(0.0, 0.5, 0.25, 1.0)
    assert config.regions[1].smoothing == {"k": 3}
    assert config.models() == {"bay", "gate"}
    assert parse_camera_config(camera_config_to_dict(config), camera_id="cam-01") == config


def test_no_regions_is_the_whole_frame_answered_by_default():
    config = parse_camera_config({"regions": []}, camera_id="cam-01")
    assert config.effective_regions() == DEFAULT_REGIONS
    assert config.effective_regions()[0].box == WHOLE_FRAME
    assert CameraConfig("cam-02").models() == {"default"}


@pytest.mark.parametrize(
    ("regions", "expected"),
    [
        ([{"name": "a", "box": [0.5, 0.5, 1.2, 0.9]}], "outside the frame"),
        ([{"name": "a", "box": [0.5, 0.5, 0.5, 0.9]}], "is empty"),
        ([{"name": "a", "box": [0.1, 0.1]}], "box must be [left, top, right, bottom]"),
        ([{"name": "a", "box": [0, 0, 1, 1], "model": "tyres"}], "unknown model 'tyres'"),
        ([{"name": "a", "box": [0, 0, 1, 1]}, {"name": "a", "box": [0, 0, 0.5, 0.5]}], "used twice"),
        ([{"name": "Bay 1", "box": [0, 0, 1, 1]}], "must match"),
        ([{"name": "a", "box": [0, 0, 1, 1], "smoothing": {"k": 0}}], "k=0 must be >= 1"),
        ([{"name": "a", "box": [0, 0, 1, 1], "colour": "red"}], "unknown field(s) colour"),
    ],
)
def test_bad_configurations_are_refused_with_what_is_wrong(regions, expected):
    with pytest.raises(RegionConfigError) as error:
        parse_camera_config({"regions": regions}, camera_id="cam-07", known_models={"default", "bay"})
    message = str(error.value)
    assert expected in message
    assert "cam-07" in message and "fix the file" in message


def test_every_problem_is_named_at_once():
    regions = [{"name": "a", "box": [0, 0, 2, 1]}, {"name": "b", "box": [0, 0, 1, 1], "model": "x"}]
    with pytest.raises(RegionConfigError) as error:
        parse_camera_config({"regions": regions}, camera_id="c", known_models={"default"})
    assert "region 'a'" in str(error.value) and "region 'b'" in str(error.value)


def test_draft_reduction_is_todays_choice_for_the_whole_frame_and_finer_for_small_boxes():
    assert draft_reduction([WHOLE_FRAME], 1280, 720, 224) == 2  # 720 // 224 = 3 -> 2
    assert draft_reduction([WHOLE_FRAME], 3000, 2000, 224) == 8
    assert draft_reduction([WHOLE_FRAME], 447, 300, 224) == 1
    bay = Box(0.0, 0.5, 0.1, 1.0)  # 128 x 360 source pixels on a 1280x720 frame
    assert draft_reduction([WHOLE_FRAME, bay], 1280, 720, 224) == 1
    assert draft_reduction([Box(0.0, 0.0, 0.5, 0.5)], 3000, 2000, 224) == 4  # 1000 px short side


def _jpeg(width: int, height: int) -> bytes:
    rng = np.random.default_rng(3)
    small = rng.integers(0, 255, (height // 16, width // 16, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(small).resize((width, height)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_the_whole_frame_crop_is_load_image():
    data = _jpeg(1280, 720)
    (whole,) = load_regions(data, [WHOLE_FRAME], source="frame.jpg")
    assert np.array_equal(whole, load_image(data, source="frame.jpg"))


def test_one_decode_gives_each_box_its_own_crop():
    # Left half black, right half white: a box on each side sees only its side.
    frame = np.zeros((720, 1280, 3), dtype=np.uint8)
    frame[:, 640:] = 255
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, "PNG")
    left, right, middle = load_regions(
        buffer.getvalue(),
        [Box(0.0, 0.0, 0.4, 1.0), Box(0.6, 0.2, 1.0, 0.8), Box(0.25, 0.0, 0.75, 1.0)],
        source="halves.png",
    )
    assert left.shape == right.shape == middle.shape == (224, 224, 3)
    assert left.max() == 0 and right.min() == 255
    assert middle[:, :100].max() == 0 and middle[:, 124:].min() == 255


def test_no_box_is_a_programming_error():
    with pytest.raises(ValueError):
        load_regions(_jpeg(320, 240), [], source="x.jpg")
