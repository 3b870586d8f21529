"""`camsort train` shows progress and results, not TensorFlow's native log lines.

The real CLI in a subprocess, in a user's environment: without the TF_* variables this test
session sets (tests/conftest.py), and with an empty cache, so TensorFlow is imported, the
ResNet50 built, converted by tf2onnx (grappler's "Starting new session") and quantized.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.fixtures.cli import camsort

TF_VARIABLES = ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")
NATIVE_MARKERS = ("oneDNN", "absl", "I0000", "W0000")


@pytest.mark.slow
def test_train_prints_no_tensorflow_log_lines(tmp_path):
    # The control: in this environment, importing TensorFlow does write those lines.
    environ = {name: value for name, value in os.environ.items() if name not in TF_VARIABLES}
    bare = subprocess.run(
        [sys.executable, "-c", "import tensorflow"], env=environ, capture_output=True, text=True, check=True
    )
    assert "oneDNN" in bare.stderr

    run = {"cache_dir": tmp_path / "cache", "cwd": tmp_path, "unset": TF_VARIABLES}
    synth = camsort("camsort synth data --per-label 6", **run)
    assert synth.returncode == 0, synth.stdout
    train = camsort("camsort train data --out model --weights none --folds 2", **run)
    assert train.returncode == 0, train.stdout[-3000:]
    assert "mean ± std" in train.stdout and (tmp_path / "model" / "model.onnx").is_file()
    noisy = [line for line in train.stdout.splitlines() if any(marker in line for marker in NATIVE_MARKERS)]
    assert not noisy, "\n".join(noisy)
