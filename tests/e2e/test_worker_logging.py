"""Several SqsWorkers in one process each keep the function's logs (issue 15.5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from functions import env
from infra.local.function_env import function_environment
from infra.local.worker import SqsWorker
from tests.fixtures.local_stack import LENIENT_TIMEOUT_S, TEST_MAX_BYTES

pytestmark = pytest.mark.e2e


def logged_keys(path: Path) -> list[str]:
    keys = []
    for line in path.read_text().splitlines():
        record = json.loads(line)  # every line the function wrote is JSON (logs or EMF)
        if "key" in record and "status" in record:
            keys.append(record["key"])
    return keys


@pytest.mark.parametrize("function_timeout_s", [LENIENT_TIMEOUT_S])
def test_each_worker_in_one_process_keeps_the_function_logs(local_stack, stack_model_uri, tmp_path):
    from training.data.synthetic import frame_jpeg

    environment = function_environment(
        local_stack,
        stack_model_uri,
        extra={
            env.MAX_BYTES: str(TEST_MAX_BYTES),
            env.MODEL_CACHE_DIR: str(tmp_path / "cache"),
            env.ONNX_THREADS: "1",
        },
    )
    s3 = local_stack.client("s3")
    for run in range(3):
        key = f"frames/cam-0{run}/frame.jpg"
        s3.put_object(Bucket=local_stack.names.bucket, Key=key, Body=frame_jpeg("car", run))
        log_path = tmp_path / f"function-{run}.log"
        # Each worker's output file is closed when its run ends, as the demo's log is.
        with open(log_path, "w") as output:
            stats = SqsWorker(local_stack, environment, function_output=output).run_until_drained(idle_s=0.3)
        assert stats.failed_batches == 0 and stats.errors == []
        assert logged_keys(log_path) == [key], f"worker {run} lost the function's logs"
        assert '"_aws"' in log_path.read_text()  # and its EMF metrics
