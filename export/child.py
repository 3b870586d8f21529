"""Run one heavy export step (``python -m export.<module> ...``) in a child process that exits.

A conversion or a calibration holds gigabytes while it runs (TensorFlow, tf2onnx's graphs,
onnxruntime's calibration session) and an allocator seldom gives all of it back; in a child, the
system gets every byte back when it exits, and the caller stays as small as it was. The child's
output is kept and shown only when it fails: one ConfigurationError with its last lines.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent  # where the child imports ``export`` from

CHILD_ENVIRONMENT = {
    # TensorFlow's C++ log lines stay in the child's kept output.
    "TF_CPP_MIN_LOG_LEVEL": "3",
    # protobuf's C implementation (upb) keeps a copied message's arena alive with the copy: each
    # tf2onnx optimizer pass rewrites the node protos, so every pass kept one more copy of the
    # weights (+90 MB a pass, 24 passes; ResNet50's conversion peaked at 4.3 GB). The pure-Python
    # protobuf does not: 2.0 GB (measured). Only children run it.
    "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python",
}


def run_child(module: str, arguments: list[str], what: str) -> None:
    """``python -m module arguments...``; raises ConfigurationError naming ``what`` when it fails."""
    from functions.errors import ConfigurationError

    environment = {
        **os.environ,
        **CHILD_ENVIRONMENT,
        "PYTHONPATH": os.pathsep.join(p for p in (str(_PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")) if p),
    }
    completed = subprocess.run(
        [sys.executable, "-m", module, *arguments],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
    )
    if completed.returncode != 0:
        lines = [line for line in completed.stderr.splitlines() if line.strip()][-5:]
        raise ConfigurationError(
            f"{what} failed in its child process (exit {completed.returncode}): " + " | ".join(lines)
        )


def child_exit_code(step: Callable[[], object]) -> int:
    """What a child's ``main`` returns: 0 when ``step`` ran; 2, with the refusal's one sentence on
    stderr (the lines :func:`run_child` shows), when it raised ConfigurationError."""
    from functions.errors import ConfigurationError

    try:
        step()
    except ConfigurationError as error:
        print(error, file=sys.stderr)
        return 2
    return 0
