"""The familiarity stage of `camsort train`, end to end in seconds: the tiny model as the backbone
(its ``features`` output), solid-colour training frames, the four unfamiliar kinds, the report."""

from __future__ import annotations

import json

import numpy as np

from functions.familiarity import Familiarity
from tests.fixtures.tiny_model import TINY_LABELS, tiny_training_means
from training.familiarity_step import describe_familiarity
from training.features.neardup import NearDuplicateGroups
from training.report.familiarity import FAMILIARITY_PNG, add_familiarity_to_report
from training.settings import TrainingSet, TrainSettings


def training_set(tiny_model_dir, cache_dir) -> TrainingSet:
    means, y = tiny_training_means()
    frames = np.broadcast_to(means.round().astype(np.uint8)[:, None, None, :], (len(y), 224, 224, 3))
    model = tiny_model_dir / "model.onnx"
    from training.features.featurize import featurize

    shas = [f"frame-{i}" for i in range(len(y))]
    features = featurize(np.ascontiguousarray(frames), shas, model, cache_dir=cache_dir, progress=False)
    return TrainingSet(
        labels=list(TINY_LABELS), y=y, groups=NearDuplicateGroups(np.arange(len(y)), 0, len(y)),
        uris=shas, sha256s=shas, frames=frames, features={"fp32": features.features}, summary={},
        report_summary={}, backbones={"fp32": model},
    )  # fmt: skip


def test_the_stage_describes_calibrates_measures_and_reports(tiny_model_dir, tmp_path):
    data = training_set(tiny_model_dir, tmp_path / "cache")
    fold_of = np.arange(len(data.y)) % 3
    steps: list[str] = []
    outcome = describe_familiarity(data, "fp32", fold_of, TrainSettings(unfamiliar_per_kind=4), steps.append)

    field = outcome.manifest_field
    assert (field["components"], field["false_alarm_rate"], field["calibration"]["frames"]) == (3, 0.01, 90)
    assert field["prior"] == {"bus": 1 / 3, "car": 1 / 3, "empty": 1 / 3}
    kinds = field["evaluation"]["kinds"]
    assert set(kinds) == {"photos", "noise", "uniform", "scenes", "all"}
    assert [kinds[k]["frames"] for k in ("photos", "noise", "uniform", "scenes", "all")] == [4, 4, 4, 4, 16]
    # flat black / white / colour frames are far from the reds, greens and blues
    assert kinds["uniform"]["detected_at_0.01"] == 1.0
    assert set(outcome.knn_table) == set(kinds) and set(outcome.unfamiliar) == set(kinds) - {"all"}
    # the field is what the function reads back
    assert Familiarity.from_manifest(field).threshold == outcome.described.familiarity.threshold
    assert any(step.startswith("unfamiliar frames: photos AUC") for step in steps)

    (tmp_path / "report.json").write_text("{}")
    (tmp_path / "report.html").write_text("<html><body></body></html>")
    add_familiarity_to_report(tmp_path, outcome)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["familiarity"]["threshold"] == field["threshold"] and "means" not in report["familiarity"]
    assert len(report["familiarity"]["oof_distances"]) == 90
    html = (tmp_path / "report.html").read_text()
    assert "Familiarity (unfamiliar frames)" in html and "For comparison: k-NN" in html
    assert (tmp_path / FAMILIARITY_PNG).read_bytes()[:4] == b"\x89PNG"


def test_no_measurement_asked_for_still_ships_the_description(tiny_model_dir, tmp_path):
    data = training_set(tiny_model_dir, tmp_path)
    settings = TrainSettings(unfamiliar_per_kind=0)
    outcome = describe_familiarity(data, "fp32", np.arange(len(data.y)) % 3, settings, lambda _: None)
    assert (
        outcome.skipped == "not asked for (--unfamiliar-frames 0)"
        and "evaluation" not in outcome.manifest_field
    )
    assert outcome.manifest_field["threshold"] > 0
