"""The pieces of `camsort demo --loop` that need no training: labelling through the page's API, the paired test."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from infra.demo.loop import label_through_the_page, paired_gain
from infra.labelling.label_set import LABELS_FILE
from infra.labelling.sample import SampleOptions, sample_command
from tests.fixtures.images import encode


def test_the_loop_labels_through_the_pages_http_api(tmp_path, tiny_model_dir):
    colours = {"bus": (250, 0, 0), "car": (0, 250, 0), "empty": (0, 0, 250)}
    truth = {}
    for i, (label, colour) in enumerate(colours.items()):
        path = tmp_path / "frames" / "cam-01" / f"2026112{i}T120000000Z.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(Image.new("RGB", (32, 18), colour)))
        truth[str(path)] = label
    rows = sample_command(
        str(tmp_path / "frames"), tmp_path / "set", SampleOptions(per_camera=3, candidates=3),
        model_uri=str(tiny_model_dir), output_format="camsort", s3_client=None,
    )  # fmt: skip
    label_through_the_page(tmp_path / "set", rows, truth)
    written = [json.loads(line) for line in (tmp_path / "set" / LABELS_FILE).read_text().splitlines()]
    assert {row["path"]: row["labels"] for row in written} == {key: [label] for key, label in truth.items()}


def test_paired_gain_is_the_exact_mcnemar_test():
    live = np.array([True, True, False, False, False, False, True])
    candidate = np.array([True, False, True, True, True, True, True])
    gain = paired_gain(live, candidate)
    assert gain == {"live": 0.4286, "candidate": 0.8571, "gained": 4, "lost": 1, "p_value": 0.1875}  # 6/32
    assert paired_gain(live, live)["p_value"] == 1.0
    many = paired_gain(np.zeros(12, bool), np.ones(12, bool))
    assert many["gained"] == 12 and many["p_value"] == 0.0002  # 1/4096
