"""A Label Studio JSON export round-trips into `camsort train` (the real CLI and the real training chain)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from camsort.cli import main
from functions.frames.manifest import read_manifest


@pytest.mark.slow
def test_a_label_studio_export_trains_a_model(
    synthetic_dataset_factory, shared_keras_backbone, training_cache_dir, tmp_path
):
    data_dir = synthetic_dataset_factory(8, seed=3)
    frames = sorted(p.relative_to(data_dir) for p in data_dir.rglob("*.jpg"))
    # Label Studio's export of a local-storage project (labelstud.io/guide/export, "JSON"):
    # the image as a local-files URL, the person's choice in annotations[].result[].value.choices.
    tasks = [
        {
            "id": n + 1,
            "data": {"image": f"/data/local-files/?d={frame.as_posix()}"},
            "annotations": [
                {"id": 500 + n, "was_cancelled": False, "ground_truth": False, "result": [
                    {"from_name": "choice", "to_name": "image", "type": "choices", "value": {"choices": [frame.parts[0]]}}
                ]}
            ],
            "predictions": [],
        }
        for n, frame in enumerate(frames)
    ]  # fmt: skip
    tasks.append(
        {"id": 999, "data": {"image": "/data/local-files/?d=bus/never-annotated.jpg"}, "annotations": []}
    )
    export = data_dir / "project-3-at-2026-11-22-12-00.json"
    export.write_text(json.dumps(tasks))
    out = tmp_path / "model"
    args = ["train", str(export), "--out", str(out), "--weights", "none", "--folds", "3", "--precision", "fp32",
            "--cache-dir", str(training_cache_dir)]  # fmt: skip
    result = CliRunner().invoke(main, args, catch_exceptions=False, terminal_width=200)
    assert result.exit_code == 0, result.output
    manifest = read_manifest(out)
    assert manifest.labels == ["bus", "car", "empty"]
    assert manifest.training_set["per_label"] == {"bus": 8, "car": 8, "empty": 8}
    assert manifest.training_set["source"] == str(export)
