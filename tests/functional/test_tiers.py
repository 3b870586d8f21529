"""The unit tier's guard (tests/unit/conftest.py) does what it says, and the tier passes it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _pytest(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow  # imports every unit test module in a fresh interpreter
def test_the_unit_tier_collects_without_tensorflow_onnx_or_moto():
    # The guard raises a usage error (exit code 4) when a forbidden module was imported.
    completed = _pytest(["tests/unit", "--collect-only", "-q"], cwd=REPO)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]


@pytest.mark.slow  # two pytest runs in fresh interpreters
def test_the_guard_refuses_heavy_imports_and_sockets(tmp_path):
    tier = tmp_path / "unit"
    tier.mkdir()
    shutil.copy(REPO / "tests" / "unit" / "conftest.py", tier / "conftest.py")
    (tier / "test_lazy.py").write_text(
        "def test_imports_tensorflow_when_run():\n    import tensorflow  # noqa: F401\n"
    )
    (tier / "test_socket.py").write_text(
        "import socket\n\ndef test_connects():\n    socket.create_connection(('127.0.0.1', 9), timeout=1)\n"
    )
    run = _pytest(["unit", "-q"], cwd=tmp_path)
    assert run.returncode == 1, run.stdout
    assert "the unit tier (tests/unit) runs without tensorflow" in run.stdout
    assert "SocketBlockedError" in run.stdout
    assert "2 failed" in run.stdout

    (tier / "test_eager.py").write_text("import onnx  # noqa: F401\n\ndef test_nothing():\n    pass\n")
    run = _pytest(["unit", "-q"], cwd=tmp_path)
    assert run.returncode != 0
    assert "the unit tier imported onnx while collecting" in run.stdout + run.stderr
