"""Cold start of the function, phase by phase, in fresh processes.

A child process per run does what Lambda does in a new container: start the interpreter,
import ``functions.handler``, build the app (clients + model from S3 into an empty cache
directory, as on a fresh /tmp), handle one SQS event. It reports wall-clock marks; the parent
takes its own time just before spawning, so "started" includes the interpreter's start.
Phases: started (interpreter up), imported (the handler module and everything it imports),
app (clients + model download + sha256 + onnxruntime session + warm-up), first_result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import stats
from bench.config import REPO_ROOT

_CHILD = r"""
import json, sys, time
marks = {"started": time.time()}
from functions import handler, wiring
marks["imported"] = time.time()
app = wiring.default_app()
marks["app"] = time.time()
from functions.observability import LocalLambdaContext
event = json.loads(open(sys.argv[1]).read())
response = handler.lambda_handler(event, LocalLambdaContext())
marks["first_result"] = time.time()
if response.get("batchItemFailures"):
    raise SystemExit(f"the cold event failed: {response}")
sys.stderr.write("MARKS " + json.dumps(marks) + "\n")
"""

PHASES = ("started", "imported", "app", "first_result")


def cold_start_once(environment: dict[str, str], event: dict[str, Any], log_path: Path) -> dict[str, float]:
    """Seconds from spawn to each mark, for one fresh process."""
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as work:
        event_path = Path(work) / "event.json"
        event_path.write_text(json.dumps(event))
        env = {**environment, "CAMSORT_MODEL_CACHE_DIR": str(Path(work) / "model-cache")}
        spawned = time.time()
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(event_path)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text(done.stdout + done.stderr)
    lines = [line for line in done.stderr.splitlines() if line.startswith("MARKS ")]
    if done.returncode or not lines:
        raise RuntimeError(f"cold start child failed (exit {done.returncode}); see {log_path}")
    marks = json.loads(lines[-1][len("MARKS ") :])
    return {name: marks[name] - spawned for name in PHASES}


def summarize_cold_starts(runs: list[dict[str, float]]) -> dict[str, Any]:
    """Median seconds to each mark and per phase (pure)."""
    medians = {name: round(stats.median([run[name] for run in runs]), 3) for name in PHASES}
    phases = {
        "interpreter": medians["started"],
        "imports": round(medians["imported"] - medians["started"], 3),
        "clients + model (S3, sha256, session, warm-up)": round(medians["app"] - medians["imported"], 3),
        "first event": round(medians["first_result"] - medians["app"], 3),
    }
    return {
        "runs_s": [round(run["first_result"], 3) for run in runs],
        "median_s": medians["first_result"],
        "phases_median_s": phases,
    }


def child_environment(endpoint_url: str, model_uri: str, table: str, model_sha256: str) -> dict[str, str]:
    from functions import env
    from infra.local.moto_server import LOCAL_AWS_ENV

    repo = str(REPO_ROOT)
    return {
        **os.environ,
        **LOCAL_AWS_ENV,
        env.AWS_ENDPOINT_URL: endpoint_url,
        env.MODEL_URI: model_uri,
        env.MODEL_SHA256: model_sha256,  # the function runs only a pinned model
        env.RESULTS_TABLE: table,
        "PYTHONPATH": repo,
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
