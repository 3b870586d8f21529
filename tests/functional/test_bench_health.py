"""make bench's camera-health phase on a reduced scale: the tampers detected after their
persistence, no false alarm, the cost measured against a real model call."""

from __future__ import annotations

import numpy as np

from bench.perf.health_cost import detection_on_synthetic, health_cost


def test_every_synthetic_tamper_is_detected_after_its_persistence_without_false_alarms(tmp_path):
    figures = detection_on_synthetic(tmp_path, frames=20, seeds=(0,), width=640, height=360)
    assert [(d["tamper"], d["frames"]) for d in figures["detections"]] == [
        ("covered", 3),
        ("defocused", 3),
        ("moved", 5),
        ("dark", 3),
    ]
    assert figures["false_alarms"] == [] and figures["healthy_frames"] == 5 * 20 - 4 * 10


def test_the_added_cost_is_measured_against_the_model_call(tiny_model):
    pixels = np.random.default_rng(0).integers(0, 256, (10, 224, 224, 3), dtype=np.uint8)
    measured = health_cost(tiny_model, pixels, rounds=1)
    assert measured["model_ms_per_frame"] > 0 and measured["ratio_to_model"] > 0
    sizes = measured["state_item_bytes"]
    assert sizes["without_health"] < sizes["with_health"] < 1024
