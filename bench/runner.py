"""One contender of the bench, run in its own fresh process: ``python -m bench.runner PLAN.json``.

Each path (the notebook way, the handler with the fp32 model, the handler with the int8
model) runs in a child process of its own so that

* its cold start is real: interpreter start, imports, container state, first result;
* its peak RSS is its own (VmHWM, reported by the child itself: see ``peak_rss_kib``);
* TensorFlow loaded by one path never shares a process (threads, allocator) with another.

The child reports to the parent as JSON lines on the file descriptor named by
``BENCH_REPORT_FD`` (not stdout: Powertools logs JSON to stdout, as it does on Lambda, and
those logs go to the child's log file). Modes:

* ``cold``: process one event and exit (repeated by the parent for a median);
* ``full``: cold start, then the warm passes (batch 1, batch 10), the per-stage split, and
  for the handler paths the draft-vs-full decode comparison;
* ``profile``: cProfile of the cold start and of warm batch-1 events, plus (handler paths)
  onnxruntime's per-operator profile. Its timings are not reported as figures: profilers
  slow things down; it says where the time goes.

Import order matters for the cold start figure: nothing heavy is imported before the
``started`` mark.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

_REPORT = None


def report(event: str, **fields) -> None:
    _REPORT.write(json.dumps({"event": event, **fields}) + "\n")
    _REPORT.flush()


def mark(name: str) -> None:
    """A wall-clock mark; the parent subtracts its own time.time() taken just before spawning."""
    report("mark", name=name, t=time.time())


def lambda_context(request_id: str) -> Any:
    """The function's one local stand-in for Lambda's context, named for the bench."""
    from functions.observability import LocalLambdaContext

    return LocalLambdaContext(
        function_name="camsort-bench", memory_limit_in_mb=3538, timeout_s=60, aws_request_id=request_id
    )


class RunFailed(RuntimeError):
    """A frame did not end as a result: the bench refuses to time a broken path."""


# --- the handler paths (b) fp32 and (c) int8 --------------------------------------------------


class HandlerPath:
    """Our Lambda handler, invoked exactly as Lambda's SQS event source invokes it."""

    def __init__(self, plan: dict):
        self.plan = plan

    def import_code(self) -> None:
        from functions import handler

        self.handler = handler

    def invoke(self, event: dict, request_id: str) -> None:
        response = self.handler.lambda_handler(event, lambda_context(request_id))
        failures = (response or {}).get("batchItemFailures", [])
        if failures:
            raise RunFailed(f"the handler reported batchItemFailures {failures}; see the child log")

    def compute_alone(self, frame_paths: list[str], batch_size: int) -> list[float]:
        """Per batch: decode + one predict with the function's own model session, no AWS call."""
        from bench.perf.latency import compute_seconds
        from functions import wiring

        frames = [Path(path).read_bytes() for path in frame_paths]
        return compute_seconds(wiring.default_app().model, frames, batch_size)

    def stage_split(self, frames: list[dict]) -> dict[str, list[float]]:
        from bench.stages import handler_stage_split

        return handler_stage_split(frames, self.plan)

    def draft_comparison(self, frame_paths: list[str]) -> dict:
        from bench.stages import draft_comparison

        return draft_comparison(frame_paths, self.plan)


# --- the notebook way (a) ---------------------------------------------------------------------


class ReferencePath:
    """Keras + LightGBM, frame by frame, results written to the same table."""

    def __init__(self, plan: dict):
        self.plan = plan

    def import_code(self) -> None:
        import boto3
        import keras  # noqa: F401 - the notebook's imports are part of its cold start
        import lightgbm  # noqa: F401

        from bench import reference

        self.reference = reference
        self.s3 = boto3.client("s3")
        self.dynamodb = boto3.client("dynamodb")
        self.classifier = None

    def _classifier(self):
        if self.classifier is None:
            self.classifier = self.reference.ReferenceClassifier.load(
                self.plan["reference_dir"], weights=self.plan["weights"], seed=self.plan["seed"]
            )
        return self.classifier

    def invoke(self, event: dict, request_id: str) -> None:
        from bench.stages import reference_handle

        reference_handle(event, self._classifier(), self.s3, self.dynamodb, self.plan["table"])

    def compute_alone(self, frame_paths: list[str], batch_size: int) -> list[float]:
        """Per batch: the notebook's decode of each frame + one predict for the batch, as its
        invocation does (bench.stages.reference_handle). Predicting frame by frame here, while
        the invocation predicts the batch at once, made compute exceed wall (a negative AWS time)."""
        import numpy as np

        from bench.reference import decode_like_notebook

        classifier, seconds = self._classifier(), []
        for start in range(0, len(frame_paths), batch_size):
            began = time.perf_counter()
            classifier.predict(
                np.stack(
                    [
                        decode_like_notebook(Path(path).read_bytes())
                        for path in frame_paths[start : start + batch_size]
                    ]
                )
            )
            seconds.append(time.perf_counter() - began)
        return seconds

    def stage_split(self, frames: list[dict]) -> dict[str, list[float]]:
        from bench.stages import reference_stage_split

        return reference_stage_split(frames, self._classifier(), self.s3, self.dynamodb, self.plan["table"])

    def draft_comparison(self, frame_paths: list[str]) -> dict:
        return {}


# --- the passes -------------------------------------------------------------------------------


def timed_pass(path, events: list[dict], name: str) -> list[float]:
    """Invoke once per event; returns the wall seconds of each invocation."""
    durations = []
    for index, event in enumerate(events):
        start = time.perf_counter()
        path.invoke(event, f"{name}-{index}")
        durations.append(time.perf_counter() - start)
        report("progress", phase=name, done=index + 1, total=len(events))
    return durations


def run_full(path, plan: dict) -> dict:
    result: dict = {}
    for index, event in enumerate(plan["warmup_events"]):
        path.invoke(event, f"warmup-{index}")
    mark("warm")

    wall = time.perf_counter()
    result["batch_1_s"] = timed_pass(path, plan["batch_1_events"], "batch_1")
    result["batch_1_wall_s"] = time.perf_counter() - wall

    wall = time.perf_counter()
    result["batch_10_s"] = timed_pass(path, plan["batch_10_events"], "batch_10")
    result["batch_10_wall_s"] = time.perf_counter() - wall
    result["batch_10_sizes"] = [len(event["Records"]) for event in plan["batch_10_events"]]
    # The same frames' compute alone (decode + inference, no S3/DynamoDB): the rest of the
    # wall time is the AWS round trips (to moto here) and the handler's own work around them.
    report("phase", name="batch_10_compute")
    batch_size = max(result["batch_10_sizes"])
    result["batch_10_compute_s"] = path.compute_alone(plan["batch_10_frame_paths"], batch_size)
    # The batch-1 pass's frames the same way, one per predict: its compute apart from its AWS time.
    report("phase", name="batch_1_compute")
    result["batch_1_compute_s"] = path.compute_alone(plan["batch_1_frame_paths"], 1)

    report("phase", name="stages")
    result["stages_s"] = path.stage_split(plan["stage_frames"])
    report("phase", name="draft")
    result["draft"] = path.draft_comparison(plan["draft_frame_paths"])
    return result


def run_profile(path, plan: dict, cold_profiler) -> dict:
    from bench.stages import cold_profile_summary, cprofile_pass, onnxruntime_op_profile

    result = {
        "cold": cold_profile_summary(cold_profiler, plan),
        "cprofile_top": cprofile_pass(path, plan["profile_events"], plan["profile_path"]),
    }
    if plan["path"] != "reference":
        result["onnxruntime_ops"] = onnxruntime_op_profile(plan)
    return result


def peak_rss_kib() -> int:
    """This process's own peak RSS (VmHWM of its address space since exec), in KiB.

    Not ``ru_maxrss``: Linux carries the pre-exec address space's high-water mark into it,
    and a child spawned by vfork + exec (what subprocess does) starts from its parent's
    RSS, so a 3 GB parent (TensorFlow, models) made every child read 3 GB.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: the best there is


def main(argv: list[str]) -> int:
    global _REPORT
    _REPORT = os.fdopen(int(os.environ["BENCH_REPORT_FD"]), "w", buffering=1)
    mark("started")
    with open(argv[1]) as handle:
        plan = json.load(handle)
    path = ReferencePath(plan) if plan["path"] == "reference" else HandlerPath(plan)
    cold_profiler = None
    if plan["mode"] == "profile":
        import cProfile

        # The profile run's cold start is profiled too: where the cold start goes.
        cold_profiler = cProfile.Profile()
        cold_profiler.enable()
    try:
        path.import_code()
        mark("imported")
        path.invoke(plan["cold_event"], "cold")
        mark("first_result")
        if cold_profiler is not None:
            cold_profiler.disable()
        if plan["mode"] == "full":
            result = run_full(path, plan)
        elif plan["mode"] == "profile":
            result = run_profile(path, plan, cold_profiler)
        else:
            result = {}
        report("result", peak_rss_kib=peak_rss_kib(), **result)
    except Exception as exc:
        # The parent turns this into a BenchError naming the path and the child's log.
        report("error", type=type(exc).__name__, message=str(exc))
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
