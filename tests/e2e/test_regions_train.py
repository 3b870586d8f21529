"""`camsort synth --regions`, `camsort crops` and `camsort train --regions` through the real CLI.

A named model trains on the crops of its regions, cut by the function's crop function, with the
real pipeline (seeded random-init ResNet50, LightGBM, the export and its parity gate); the
crops of one frame share a fold.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from camsort.cli import main
from functions.frames.image_loader import load_regions
from functions.frames.manifest import load_verified
from functions.frames.regions import parse_camera_config


def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, terminal_width=200)


@pytest.fixture(scope="module")
def lot(tmp_path_factory):
    root = tmp_path_factory.mktemp("lot")
    made = _invoke("synth", root, "--regions", "--frames", 6, "--seed", 3, "--width", 640, "--height", 360)
    assert made.exit_code == 0, made.output
    assert "bay1=occupied" in made.output or "bay1=empty" in made.output
    return root


def test_crops_for_labelling(lot, tmp_path):
    result = _invoke("crops", lot, tmp_path, "--config", lot / "regions" / "lot-01.json")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "bay" / "_unlabeled").iterdir()) == [
        f"bay{k}" for k in range(1, 9)
    ]
    assert len(list((tmp_path / "gate" / "_unlabeled" / "gate").glob("*.png"))) == 6
    missing = _invoke("crops", lot, tmp_path / "x", "--config", lot / "nope.json")
    assert missing.exit_code == 1 and "nope.json: cannot read the regions config" in missing.output


@pytest.mark.slow
def test_a_named_model_trains_on_its_regions(lot, shared_keras_backbone, training_cache_dir, tmp_path):
    out = tmp_path / "bay"
    result = _invoke(
        "train", lot, "--regions", lot / "cameras.json", "--labels-file", lot / "labels.jsonl",
        "--model-name", "bay", "--out", out, "--weights", "none", "--folds", 3, "--precision", "fp32",
        "--cache-dir", training_cache_dir,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "model bay: 48 crops of 6 frames" in result.output
    model_path, manifest = load_verified(out)
    assert manifest.labels == ["empty", "occupied"] and manifest.task == "binary"
    summary = manifest.training_set
    assert (summary["model_name"], summary["frames"], summary["total"]) == ("bay", 6, 48)
    assert summary["regions"] == [f"bay{k}" for k in range(1, 9)]
    assert summary["near_duplicates"]["groups"] <= 6  # the crops of a frame form one group at least
    assert manifest.cv_summary["folds"] == 3
    assert manifest.parity["fp32_vs_keras"]["labels_disagree"] == 0
    per_region = json.loads((out / "report.json").read_text())["per_region"]
    assert sorted(per_region) == [f"bay{k}" for k in range(1, 9)]
    assert all(figures["crops"] == 6 and 0 <= figures["accuracy"] <= 1 for figures in per_region.values())

    # the shipped graph answers for a crop the function cuts
    import onnxruntime as ort

    rows = [json.loads(line) for line in (lot / "labels.jsonl").read_text().splitlines()]
    key = rows[0]["key"]
    config = parse_camera_config(
        json.loads((lot / "regions" / "lot-01.json").read_text()), camera_id="lot-01", source="t"
    )
    crops = np.stack(load_regions((lot / key).read_bytes(), [r.box for r in config.regions], source=key))
    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    (probabilities,) = session.run(["probabilities"], {"image": crops})
    assert probabilities.shape == (9, 2) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)

    refused = _invoke(
        "train", lot, "--regions", lot / "cameras.json", "--out", tmp_path / "x", "--weights", "none"
    )
    assert refused.exit_code == 2 and "--labels-file" in refused.output
