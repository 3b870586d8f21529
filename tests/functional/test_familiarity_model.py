"""A real ONNX model's ``features`` -> the manifest's familiarity description -> ``unfamiliar``.

The familiar tiny model (tests/fixtures/tiny_model.py) was described by training's own code on
reds, greens and blues around FAMILIAR_COLOURS: those frames keep their labels, a grey, black or
white frame comes back ``unfamiliar`` with its distance, whatever its probabilities say.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from camsort.cli import main
from functions.frames.image_loader import load_image
from functions.frames.manifest import UNFAMILIAR_LABEL
from functions.frames.on_demand import classify_images
from tests.fixtures.tiny_model import FAMILIAR_COLOURS, tiny_features
from tests.functional.test_handler import jpeg

STRANGERS = [(128, 128, 128), (0, 0, 0), (255, 255, 255)]


def pixels(colours) -> np.ndarray:
    return np.stack([load_image(jpeg(colour), source=str(colour)) for colour in colours])


def test_familiar_colours_keep_their_labels_and_strangers_are_unfamiliar(familiar_model):
    frames = pixels([*FAMILIAR_COLOURS, *STRANGERS])
    probabilities, features = familiar_model.predict(frames)
    decisions = familiar_model.decide(probabilities, features)
    threshold = familiar_model.familiarity.threshold
    assert [d.label for d in decisions] == [*FAMILIAR_COLOURS.values(), *[UNFAMILIAR_LABEL] * 3]
    assert all(d.distance < threshold for d in decisions[:3])
    assert all(d.distance > 2 * threshold for d in decisions[3:])
    # the grey frame's probabilities are a three-way tie: unknown without familiarity, unfamiliar with it
    assert decisions[3].confidence == pytest.approx(1 / 3, abs=1e-6)


def test_distance_from_the_onnx_features_is_the_distance_of_the_frames_channel_means(familiar_model):
    frames = pixels([(215, 40, 40), (90, 90, 200), (0, 0, 0)])
    _, features = familiar_model.predict(frames)
    means = frames.reshape(len(frames), -1, 3).mean(axis=1)  # what the graph computes before MatMul
    np.testing.assert_allclose(features, tiny_features(means), rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(
        familiar_model.familiarity.distances(features),
        familiar_model.familiarity.distances(tiny_features(means)),
        rtol=1e-4,
    )


def test_a_model_without_a_description_answers_as_before(tiny_model):
    assert tiny_model.familiarity is None
    (decision,) = tiny_model.decide(*tiny_model.predict(pixels([(128, 128, 128)])))
    assert decision.label == "unknown" and decision.distance is None


def test_on_demand_answers_carry_the_distance(familiar_model):
    answers = classify_images(
        familiar_model,
        [("red.jpg", jpeg((215, 40, 40))), ("black.jpg", jpeg((0, 0, 0)))],
        max_bytes=10_000_000,
        max_pixels=40_000_000,
    )
    assert [a["label"] for a in answers] == ["bus", UNFAMILIAR_LABEL]
    assert answers[1]["distance"] > familiar_model.familiarity.threshold > answers[0]["distance"]


def test_camsort_classify_prints_unfamiliar_with_distance_and_threshold(familiar_model_dir, tmp_path):
    grey = tmp_path / "grey.jpg"
    grey.write_bytes(jpeg((128, 128, 128)))
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        main, ["classify", str(grey), "--model", str(familiar_model_dir)], terminal_width=200
    )
    assert result.exit_code == 0, result.output
    threshold = json.loads((familiar_model_dir / "manifest.json").read_text())["familiarity"]["threshold"]
    assert f"unfamiliar above distance {threshold:.3f}" in result.output
    (row,) = [line for line in result.output.splitlines() if "grey.jpg" in line]
    cells = [cell.strip() for cell in row.split("│") if cell.strip()]
    assert cells[2] == "unfamiliar" and float(cells[4]) > threshold
