"""What ships to Lambda imports nothing from the training/CLI side.

A fresh interpreter imports ``functions.handler`` with the environment Lambda would give it
and lists what got imported. (A subprocess, because this test process has long since
imported TensorFlow and friends for other tests.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from functions import env

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = (
    "tensorflow",
    "lightgbm",
    "keras",
    "click",
    "rich",
    "training",
    "export",
    "infra",
    "camsort",
    "onnx",
    "pyarrow",  # the archive functions' artifact has it; the classify one must not need it
)

PROBE = """
import json, sys
import functions.handler
import functions.wiring, functions.frames.classify, functions.frames.model, functions.frames.image_loader
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def _imported(probe: str, tmp_path) -> set[str]:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        env.MODEL_URI: str(tmp_path),  # never read at import outside Lambda
        env.RESULTS_TABLE: "camsort-results-test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    return set(json.loads(completed.stdout.strip().splitlines()[-1]))


def test_handler_imports_only_the_lambda_dependencies(tmp_path):
    imported = _imported(PROBE, tmp_path)
    assert {"functions", "onnxruntime", "numpy", "PIL", "boto3", "aws_lambda_powertools"} <= imported
    assert imported.isdisjoint(FORBIDDEN), sorted(imported & set(FORBIDDEN))


ARCHIVE_PROBE = """
import json, sys
import functions.compact_handler, functions.archive.results_export
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_archive_handlers_import_only_what_the_archive_artifact_ships(tmp_path):
    """requirements-archive.txt: pyarrow, numpy, boto3, powertools; no onnxruntime, no Pillow."""
    imported = _imported(ARCHIVE_PROBE, tmp_path)
    assert {"functions", "pyarrow", "numpy", "boto3", "aws_lambda_powertools"} <= imported
    forbidden = (set(FORBIDDEN) - {"pyarrow"}) | {"onnxruntime", "PIL", "duckdb", "dask", "pandas"}
    assert imported.isdisjoint(forbidden), sorted(imported & forbidden)
