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
)

PROBE = """
import json, sys
import functions.handler
import functions.wiring, functions.frames.classify, functions.frames.model, functions.frames.image_loader
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_handler_imports_only_the_lambda_dependencies(tmp_path):
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO),
        env.MODEL_URI: str(tmp_path),  # never read at import outside Lambda
        env.RESULTS_TABLE: "camsort-results-test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    completed = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    imported = set(json.loads(completed.stdout.strip().splitlines()[-1]))
    assert {"functions", "onnxruntime", "numpy", "PIL", "boto3", "aws_lambda_powertools"} <= imported
    assert imported.isdisjoint(FORBIDDEN), sorted(imported & set(FORBIDDEN))
