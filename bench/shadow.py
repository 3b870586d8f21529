"""What shadow scoring adds to a sampled invocation: ``python -m bench.shadow LIVE_DIR CANDIDATE_DIR``.

Measured on the function's own code path: the live results of one decoded batch are written,
then :func:`functions.frames.shadow.run_shadow` runs the candidate on the same batch and records its
answers (UpdateItem per frame). The added time per sampled frame is run_shadow's wall time
divided by the frames, split into the candidate's inference and the writes. DynamoDB is moto
in process (no network), so the write share is a lower bound; on Lambda each UpdateItem is a
~5-10 ms round trip unless batched concurrently (d-perf's concurrent I/O applies here too).

An unsampled invocation pays nothing but one random draw; the mean cost per invocation is
``sample_rate x`` the sampled figure. Opening the candidate adds its session to the container's
memory: reported as the RSS growth when it is opened.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


class _TimedModel:
    """The candidate session with its predict() timed, so one run_shadow call splits into
    inference and writes (timing them in separate runs mixes two moments of a noisy machine)."""

    def __init__(self, model: Any):
        self._model = model
        self.predict_s: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)

    def predict(self, images: np.ndarray) -> Any:
        started = time.perf_counter()
        try:
            return self._model.predict(images)
        finally:
            self.predict_s.append(time.perf_counter() - started)


def synthetic_batch(batch_size: int, seed: int = 0) -> np.ndarray:
    """``batch_size`` synthetic 1280x720 street frames, JPEG-encoded then decoded by the function's loader."""
    import io

    from functions.frames.image_loader import load_image
    from training.data.synthetic import LABELS, render_frame

    rng = np.random.default_rng(seed)
    frames = []
    for i in range(batch_size):
        buffer = io.BytesIO()
        render_frame(LABELS[i % len(LABELS)], rng).save(buffer, "JPEG", quality=90)
        frames.append(load_image(buffer.getvalue(), source=f"synthetic-{i}"))
    return np.stack(frames)


def measure_shadow(
    live_dir: Path, candidate_dir: Path, *, batch_size: int = 10, repeats: int = 5, threads: int | None = None
) -> dict[str, Any]:
    """Median milliseconds per sampled frame that run_shadow adds, with its inference/write split."""
    import boto3
    from moto import mock_aws

    from functions.frames.model import ModelSession
    from functions.frames.shadow import ShadowScorer, run_shadow
    from functions.settings import Settings
    from functions.stores.results import ResultsTable
    from functions.stores.storage import FrameStore
    from functions.wiring import App
    from infra.deploy.topology import TABLE_PARTITION_KEY, TABLE_SORT_KEY
    from infra.local.stack import create_keyed_table

    live = ModelSession.open(str(live_dir), threads=threads)
    rss_before = _rss_mib()
    candidate = ModelSession.open(str(candidate_dir), threads=threads)
    rss_added = _rss_mib() - rss_before
    batch = synthetic_batch(batch_size)
    timed = _TimedModel(candidate)

    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_keyed_table(dynamodb, "bench-results", TABLE_PARTITION_KEY, TABLE_SORT_KEY)
        table = ResultsTable("bench-results", dynamodb)
        app = App(
            settings=Settings(model_uri=str(live_dir), results_table="bench-results"),
            store=FrameStore(boto3.client("s3", region_name="us-east-1")),
            table=table,
            model=live,
            shadow=ShadowScorer(model=timed, sample_rate=1.0, draw=lambda: 0.0),
        )
        # The live path first, as in classify_frames: inference, decisions, result writes.
        live_ms, decisions = _time_live_path(live, batch, repeats)
        outcomes = _written_outcomes(table, [decision.label for decision in decisions])
        run_shadow(app, batch, outcomes)  # warm: first UpdateItem builds moto's and botocore's state
        added, inference, writes = [], [], []
        for _ in range(repeats):
            started = time.perf_counter()
            recorded = run_shadow(app, batch, outcomes)
            total_ms = (time.perf_counter() - started) * 1000.0 / batch_size
            predict_ms = timed.predict_s[-1] * 1000.0 / batch_size
            assert recorded == batch_size, f"only {recorded} of {batch_size} shadow answers recorded"
            added.append(total_ms)
            inference.append(predict_ms)
            writes.append(total_ms - predict_ms)
    added_ms = statistics.median(added)
    inference_ms = statistics.median(inference)
    return {
        "batch_size": batch_size,
        "repeats": repeats,
        "threads": candidate.threads,
        "live_precision": live.manifest.precision,
        "candidate_precision": candidate.manifest.precision,
        "live_inference_ms_per_frame": round(statistics.median(live_ms), 2),
        "shadow_added_ms_per_sampled_frame": round(added_ms, 2),
        "shadow_inference_ms_per_frame": round(inference_ms, 2),
        "shadow_write_ms_per_frame": round(statistics.median(writes), 2),
        "candidate_rss_mib": round(rss_added, 1),
    }


def _time_live_path(live: Any, batch: np.ndarray, repeats: int) -> tuple[list[float], list[Any]]:
    """Milliseconds per frame of each repeat of the live inference + decisions, and the decisions."""
    from functions.frames.decision import decide

    live_ms, decisions = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        probabilities, _ = live.predict(batch)
        decisions = decide(probabilities, live.labels, live.manifest.thresholds)
        live_ms.append((time.perf_counter() - started) * 1000.0 / len(batch))
    return live_ms, decisions


def _written_outcomes(table: Any, labels: list[str]) -> list[Any]:
    """One live result written per frame (what run_shadow updates), and its ``ok`` outcome."""
    from functions.frames.events import FrameEvent
    from functions.frames.outcome import FrameOutcome

    outcomes = []
    for i, label in enumerate(labels):
        frame = FrameEvent(
            bucket="bench",
            key=f"frames/cam-0/{i}.jpg",
            size=None,
            etag=f"e{i}",
            version_id=None,
            sequencer="01",
            event_time=None,
            event_name="ObjectCreated:Put",
            source_id=f"m-{i}",
        )
        item = {
            "object_id": f"bench/{frame.key}",
            "object_version": frame.etag,
            "sequencer": "01",
            "label": label,
        }
        table.put_result(item)
        outcomes.append(FrameOutcome(frame, "ok", label=label, written=True))
    return outcomes


def shadow_stage(model_dirs: dict[str, Path], results: dict[str, Any], *, batch_size: int = 10) -> None:
    """The bench stage (one line in bench/harness.py's run_bench, after the models are made):
    the int8 model shadow-scored beside the fp32 one (a real "quantize it?" question), into
    ``results["shadow"]``. Skipped, with a note, unless both precisions are there."""
    if not {"fp32", "int8"} <= set(model_dirs):
        results.setdefault("notes", []).append(
            "shadow stage skipped: it needs both the fp32 and the int8 model"
        )
        return
    results["shadow"] = measure_shadow(model_dirs["fp32"], model_dirs["int8"], batch_size=batch_size)


def shadow_markdown(results: dict[str, Any]) -> str:
    """The shadow stage as a results.md section ("" when it did not run)."""
    figures = results.get("shadow")
    if not figures:
        return ""
    rows = [
        ("live inference (for scale)", figures["live_inference_ms_per_frame"]),
        ("**added by shadow scoring, per sampled frame**", figures["shadow_added_ms_per_sampled_frame"]),
        ("of which the candidate's inference", figures["shadow_inference_ms_per_frame"]),
        (
            "of which the UpdateItem (moto in process: not DynamoDB's figure)",
            figures["shadow_write_ms_per_frame"],
        ),
    ]
    lines = [
        "",
        "## Shadow scoring",
        "",
        f"Live {figures['live_precision']} model, candidate {figures['candidate_precision']}, batch "
        f"{figures['batch_size']}, {figures['threads']} thread(s), median of {figures['repeats']}; "
        f"candidate session in memory: +{figures['candidate_rss_mib']} MiB RSS.",
        "",
        "| figure | ms per frame |",
        "| --- | ---: |",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.shadow", description=__doc__.splitlines()[0])
    parser.add_argument("live_dir", type=Path)
    parser.add_argument("candidate_dir", type=Path)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    figures = measure_shadow(
        args.live_dir,
        args.candidate_dir,
        batch_size=args.batch_size,
        repeats=args.repeats,
        threads=args.threads,
    )
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
