"""`camsort sample` with a real ONNX model (the tiny one): features for diversity, margins for doubt."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from camsort.cli import main
from tests.fixtures.images import encode

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
# Per camera: near-duplicate reds, one green, one blue, and two near coin tosses (grey-ish).
COLOURS = [(250, 0, 0), (248, 2, 0), (246, 4, 0), (0, 250, 0), (0, 0, 250), (128, 128, 126), (120, 130, 128)]


@pytest.fixture
def frames(tmp_path) -> Path:
    for camera in ("cam-01", "cam-02"):
        for i, colour in enumerate(COLOURS):
            path = tmp_path / "frames" / camera / f"{T0 + timedelta(minutes=i):%Y%m%dT%H%M%S}000Z.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode(Image.new("RGB", (64, 36), colour), "PNG"))  # PNG: exact colours
    return tmp_path / "frames"


def _run(*args: str) -> None:
    result = CliRunner().invoke(main, ["sample", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def _rows(set_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (set_dir / "manifest.jsonl").read_text().splitlines()]


def test_diverse_in_the_models_feature_space(frames, tmp_path, tiny_model_dir):
    _run(str(frames), "--per-camera", "3", "--out", str(tmp_path / "set"), "--model", str(tiny_model_dir))
    rows = _rows(tmp_path / "set")
    assert len(rows) == 6
    for camera in ("cam-01", "cam-02"):
        guesses = sorted(r["guess"] for r in rows if r["camera"] == camera)
        assert guesses == ["bus", "car", "empty"]  # one of each colour, never two near-identical reds
    info = json.loads((tmp_path / "set" / "set.json").read_text())
    assert info["selection"] == "diverse-features" and info["labels"] == ["bus", "car", "empty"]
    assert info["model_version"] == "tiny-1"


def test_uncertain_ranks_by_the_margin(frames, tmp_path, tiny_model_dir):
    _run(
        str(frames),
        "--per-camera",
        "2",
        "--out",
        str(tmp_path / "set"),
        "--model",
        str(tiny_model_dir),
        "--uncertain",
    )
    rows = _rows(tmp_path / "set")
    keys = [Path(r["key"]).name for r in rows if r["camera"] == "cam-01"]
    assert keys == ["20261122T120500000Z.jpg", "20261122T120600000Z.jpg"]  # the two grey frames
    assert all(r["margin"] < 0.05 for r in rows) and rows[0]["margin"] <= rows[1]["margin"]


def test_uncertain_without_a_model_is_one_sentence(frames, tmp_path):
    result = CliRunner().invoke(
        main, ["sample", str(frames), "--per-camera", "2", "--out", str(tmp_path / "s"), "--uncertain"]
    )
    assert result.exit_code == 1
    assert "--uncertain ranks by the live model's margin: give the model with --model" in result.output
    result = CliRunner().invoke(
        main,
        [
            "sample",
            str(tmp_path / "nowhere"),
            "--per-camera",
            "2",
            "--out",
            str(tmp_path / "s"),
            "--labels",
            "a,b",
        ],
    )
    assert result.exit_code == 1 and "no such folder" in result.output
