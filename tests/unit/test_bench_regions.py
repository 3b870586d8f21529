"""The regions bench stage (bench/perf/regions.py) with a stand-in model: its layout, one ONNX
call per case and batch with k crops a frame, and ratios to one region."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
from PIL import Image

from bench.perf.regions import BATCH, BAYS, region_cost, regions_markdown
from functions.frames.regions import WHOLE_FRAME, draft_reduction


class StandIn:
    """Uniform probabilities over three labels; records each call's batch size."""

    def __init__(self):
        self.calls: list[int] = []
        self.labels = ["bus", "car", "empty"]
        self.manifest = SimpleNamespace(
            task="multiclass", thresholds=dict.fromkeys(self.labels, 0.5), model_version="m", precision="fp32",
            backbone="stand-in",
        )  # fmt: skip

    def predict(self, images):
        self.calls.append(len(images))
        return np.full((len(images), 3), 1 / 3, dtype=np.float32), np.zeros((len(images), 2048), np.float32)


def frame() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (1280, 720), (90, 120, 60)).save(buffer, "JPEG")
    return buffer.getvalue()


def test_the_bays_are_eight_boxes_in_the_frame_decoded_at_one_scale_for_every_k():
    assert len(BAYS) == 8 and all(0 <= b.left < b.right <= 1 and 0 <= b.top < b.bottom <= 1 for b in BAYS)
    assert {draft_reduction(list(BAYS[:k]), 1280, 720, 224) for k in (1, 4, 8)} == {1}
    assert draft_reduction([WHOLE_FRAME], 1280, 720, 224) == 2  # the whole frame decodes smaller


def test_one_call_per_case_and_batch_with_k_crops_a_frame():
    model = StandIn()
    figures = region_cost(model, [frame()] * (2 * BATCH))
    assert sorted(model.calls) == sorted([BATCH, 4 * BATCH, 8 * BATCH, BATCH] * 2)
    assert figures["frames"] == 2 * BATCH
    assert list(figures["rows"]) == ["1 regions", "4 regions", "8 regions", "whole frame"]
    assert figures["rows"]["1 regions"]["ratio_to_one_region"] == 1.0
    assert "| 8 regions |" in regions_markdown(figures)
