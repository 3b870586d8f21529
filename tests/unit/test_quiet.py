"""Which lines on descriptor 2 are TensorFlow's native logs (dropped) and which are the user's (kept)."""

from __future__ import annotations

import pytest

from camsort.quiet import is_native_log_line

# Captured from `camsort demo` / `camsort train` with TensorFlow 2.21 on this project's machines.
DROPPED = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"I0000 00:00:1796539327.466065   11220 port.cc:153] oneDNN custom operations are on. You may see "
    b"slightly different numerical results due to floating-point round-off errors from different "
    b"computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.",
    b"I0000 00:00:1796539327.642008   11220 cpu_feature_guard.cc:227] This TensorFlow binary is optimized "
    b"to use available CPU instructions in performance-critical operations.",
    b"To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 AVX512_FP16 AVX_VNNI "
    b"AMX_TILE AMX_INT8 AMX_BF16 FMA, in other operations, rebuild TensorFlow with the appropriate compiler flags.",
    b"I0000 00:00:1796539337.630430   11220 devices.cc:76] Number of eligible GPUs (core count >= 8, compute "
    b"capability >= 0.0): 0 (Note: TensorFlow was not compiled with CUDA or ROCm support)",
    b"I0000 00:00:1796539337.630747   11220 single_machine.cc:376] Starting new session",
    b"W0000 00:00:1796539337.630747   11220 loader.cc:12] something TensorFlow warns about",
    b"2026-12-06 07:00:00.123456: I tensorflow/core/platform/cpu_feature_guard.cc:182] This TensorFlow binary",
]
KEPT = [
    b"Traceback (most recent call last):",
    b"Error: no running demo recorded in /root/.cache/camsort/demo/state.json",
    b"F0000 00:00:1796539337.630747   11220 check.cc:1] a fatal check: TensorFlow is about to abort",
    b"  warnings.warn(",
    b"I0000 is how a camera could be named",
    b"",
]


@pytest.mark.parametrize("line", DROPPED)
def test_tensorflow_native_log_lines_are_dropped(line):
    assert is_native_log_line(line)


@pytest.mark.parametrize("line", KEPT)
def test_everything_else_is_kept(line):
    assert not is_native_log_line(line)
