"""bench.perf.upload_latency: the AWS latency model's arithmetic (no measurement involved)."""

from __future__ import annotations

import pytest

from bench.perf.upload_latency import (
    INVOKE_S,
    S3_DELIVERY_S,
    aws_model,
    latency_summary,
    measured_invocation_s,
)

CELLS = {
    "20ms-batch1": {"invocation": {"mean_ms": 100.0}},
    "20ms-batch10": {"invocation": {"mean_ms": 400.0}},
}


def test_invocation_time_is_interpolated_between_the_measured_batches():
    invocation = measured_invocation_s(CELLS)
    assert [invocation(n) for n in (1, 4, 10, 25)] == pytest.approx([0.1, 0.2, 0.4, 0.4])


def test_a_slow_camera_waits_out_the_window_a_busy_one_fills_the_batch():
    invocation = measured_invocation_s(CELLS)
    fixed = S3_DELIVERY_S + INVOKE_S
    # 1 frame/s, window 2 s: the batch closes after 2 s with 3 frames; its first frame waited 2 s.
    slow = aws_model(1.0, 10, 2.0, invocation)
    assert slow["frames_per_invocation"] == 3
    assert slow["worst_s"] == pytest.approx(fixed + 2.0 + invocation(3), abs=1e-3)
    assert slow["mean_s"] == pytest.approx(fixed + 1.0 + invocation(3), abs=1e-3)
    # 100 frames/s: ten frames in 0.1 s, long before the window.
    busy = aws_model(100.0, 10, 2.0, invocation)
    assert busy["frames_per_invocation"] == 10
    assert busy["worst_s"] == pytest.approx(fixed + 0.1 + 0.4, abs=1e-3)
    # No window: one frame per invocation at a low rate, no wait.
    none = aws_model(1.0, 10, 0.0, invocation)
    assert (none["frames_per_invocation"], none["worst_s"]) == (1, pytest.approx(fixed + 0.1, abs=1e-3))
    with pytest.raises(ValueError):
        aws_model(0.0, 10, 2.0, invocation)


def test_latency_summary():
    assert latency_summary([0.1, 0.2, 0.3, 0.4, 1.0]) == {"p50_ms": 300.0, "p95_ms": 880.0, "max_ms": 1000.0}
