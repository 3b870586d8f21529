"""The child-process protocol: ``bench.runner`` in a fresh interpreter per run, its marks,
progress and result over a pipe; and the import cost of each path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import stats
from bench.config import (
    REPO_ROOT,
    BenchError,
)
from bench.report import REFERENCE


@dataclass
class ChildRun:
    marks_s: dict[str, float] = field(default_factory=dict)  # seconds since spawn
    result: dict[str, Any] = field(default_factory=dict)
    peak_rss_mib: float = 0.0
    returncode: int = 0


def spawn(
    plan: dict[str, Any],
    environment: dict[str, str],
    log_path: Path,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> ChildRun:
    """Run ``bench.runner`` on ``plan`` in a fresh process; marks are seconds since spawn.

    Peak RSS is the child's own high-water mark (VmHWM, reported by the child at its end),
    not RUSAGE_CHILDREN / wait4's ru_maxrss: on Linux those start from the parent's RSS
    for a vfork + exec'd child (measured: every path read the 3 GB of this process).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    plan_path = log_path.with_suffix(".plan.json")
    plan_path.write_text(json.dumps(plan))
    read_fd, write_fd = os.pipe()
    run = ChildRun()
    error: dict[str, Any] | None = None
    with open(log_path, "wb") as log:
        spawned_at = time.time()
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.runner", str(plan_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**environment, "BENCH_REPORT_FD": str(write_fd)},
            pass_fds=(write_fd,),
            cwd=REPO_ROOT,
        )
        os.close(write_fd)
        with os.fdopen(read_fd) as reports:
            for line in reports:
                message = json.loads(line)
                kind = message.pop("event")
                if kind == "mark":
                    run.marks_s[message["name"]] = message["t"] - spawned_at
                elif kind == "progress" and on_progress:
                    on_progress(message["phase"], message["done"], message["total"])
                elif kind == "phase" and on_progress:
                    on_progress(message["name"], 0, 0)
                elif kind == "result":
                    run.result = message
                elif kind == "error":
                    error = message
        run.returncode = process.wait()
    if "peak_rss_kib" in run.result:
        run.peak_rss_mib = stats.rss_mib(run.result.pop("peak_rss_kib"))
    if error or run.returncode != 0:
        what = f"{error['type']}: {error['message']}" if error else f"exit code {run.returncode}"
        raise BenchError(f"bench child for {plan['path']} ({plan['mode']}) failed: {what}; see {log_path}")
    return run


def child_environment(stack, path: str, model_uri: str | None, model_cache: Path) -> dict[str, str]:
    """The environment Lambda gives the function (infra.local.function_env), for the handler paths;
    the same endpoint and credentials for the notebook way."""
    from functions import env
    from infra.local.function_env import function_environment

    base = {name: value for name, value in os.environ.items() if not name.startswith(("CAMSORT_", "AWS_"))}
    base["PYTHONUNBUFFERED"] = "1"
    base.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if path == REFERENCE:
        # The notebook's process: the endpoint and credentials, none of the function's settings.
        function_env = function_environment(stack, "unused")
        keep = {
            name: value
            for name, value in function_env.items()
            if name.startswith("AWS_") and "LAMBDA" not in name
        }
        return {**base, **keep}
    return {
        **base,
        **function_environment(stack, model_uri, extra={env.MODEL_CACHE_DIR: str(model_cache)}),
    }


# --- import cost ----------------------------------------------------------------------------------

# What each path imports before it can do anything, in the order it imports it.
IMPORT_STATEMENTS = {
    "handler": (
        "import functions.handler",
        ("numpy", "PIL.Image", "onnxruntime", "boto3", "aws_lambda_powertools", "functions.handler"),
    ),
    REFERENCE: (
        "import numpy, tensorflow, keras, lightgbm, boto3",
        ("numpy", "tensorflow", "keras", "lightgbm", "boto3"),
    ),
}


def parse_importtime(stderr: str, modules: tuple[str, ...]) -> dict[str, float]:
    """Cumulative import seconds of ``modules`` from ``python -X importtime`` output.

    Each module is imported once, so its line's cumulative column is its whole import
    (minus what something imported before it already loaded).
    """
    found: dict[str, float] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        _, cumulative, name = line[len("import time:") :].split("|")
        name, cumulative = name.strip(), cumulative.strip()
        if name in modules and cumulative.isdigit():
            found[name] = int(cumulative) / 1e6
    return {module: round(found[module], 3) for module in modules if module in found}


def import_times(path: str, environment: dict[str, str]) -> dict[str, float]:
    """One fresh interpreter's import cost for ``path`` (no container state is built)."""
    from functions import env

    statement, modules = IMPORT_STATEMENTS[REFERENCE if path == REFERENCE else "handler"]
    # Without the Lambda marker the handler module does not build its app at import.
    environment = {name: value for name, value in environment.items() if name != env.AWS_LAMBDA_FUNCTION_NAME}
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if completed.returncode != 0:
        raise BenchError(f"`python -c {statement!r}` failed for {path}: {completed.stderr[-500:]}")
    return parse_importtime(completed.stderr, modules)
