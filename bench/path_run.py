"""One path measured on the stack: cold starts, import cost, the full warm run, the profile."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.child import ChildRun, child_environment, import_times, spawn
from bench.config import BenchConfig
from bench.inputs import BenchFrame
from bench.report import REFERENCE
from bench.staging import camera_for, delete_group, frame_refs, sqs_events, upload_group, verify_results
from bench.summary import summarize_path


def run_path(
    config: BenchConfig,
    stack,
    path: str,
    frames: list[BenchFrame],
    model_uri: str | None,
    reference_dir: Path,
    progress,
) -> dict[str, Any]:
    """Cold starts, then the full warm run, then (optionally) the profile run, for one path."""
    run = PathRun(config, stack, path, frames, model_uri, reference_dir, progress)
    cold_runs = run.cold_starts()
    imports = run.import_cost()
    full, labels = run.full()
    profile = run.profile() if config.profile else None
    run.clean_up()
    summary = summarize_path(cold_runs, full, profile, labels["batch1"])
    summary["cold_start_s"]["imports_s"] = imports
    return summary


@dataclass
class PathRun:
    """One path's runs against the stack; each child gets a fresh model cache, as a new container would."""

    config: BenchConfig
    stack: Any
    path: str
    frames: list[BenchFrame]
    model_uri: str | None
    reference_dir: Path
    progress: Any

    def __post_init__(self) -> None:
        self.frame_bytes = [frame.read() for frame in self.frames]
        self.logs = self.config.work_dir / "logs"
        self.base_plan = {
            "path": self.path,
            "weights": self.config.weights,
            "seed": self.config.seed,
            "table": self.stack.names.table,
            "reference_dir": str(self.reference_dir),
        }
        self.task = self.progress.add_task(f"{self.path}: cold starts", total=self.config.cold_starts)
        # Frame groups of the full run, by camera suffix: each is verified and deleted by name.
        self.groups = {
            "warmup": self.frame_bytes[: self.config.warmup],
            "cold": self.frame_bytes[self.config.warmup : self.config.warmup + 1],
            "batch1": self.frame_bytes,
            "batch10": self.frame_bytes,
            "stages": self.frame_bytes[: self.config.stage_frames],
        }

    def _phase(self, description: str) -> None:
        self.progress.update(self.task, description=f"{self.path}: {description}", completed=0, total=None)

    def _spawn(
        self, plan: dict[str, Any], log_name: str, on_progress: Callable[[str, int, int], None] | None = None
    ) -> ChildRun:
        with tempfile.TemporaryDirectory(prefix="bench-model-cache-") as model_cache:
            environment = child_environment(self.stack, self.path, self.model_uri, Path(model_cache))
            return spawn(plan, environment, self.logs / f"{self.path}-{log_name}.log", on_progress)

    def cold_starts(self) -> list[ChildRun]:
        """One fresh process per cold start, each on its own single frame."""
        runs = []
        for attempt in range(self.config.cold_starts):
            camera = camera_for(self.path, f"cold{attempt}")
            (message,) = upload_group(self.stack, self.frame_bytes[attempt : attempt + 1], camera)
            plan = {**self.base_plan, "mode": "cold", "cold_event": sqs_events(self.stack, [message], 1)[0]}
            runs.append(self._spawn(plan, f"cold{attempt}"))
            verify_results(self.stack, camera, 1)
            self.progress.advance(self.task)
        return runs

    def import_cost(self) -> dict[str, float]:
        self._phase("import cost")
        with tempfile.TemporaryDirectory(prefix="bench-model-cache-") as model_cache:
            environment = child_environment(self.stack, self.path, self.model_uri, Path(model_cache))
            return import_times(self.path, environment)

    def full(self) -> tuple[ChildRun, dict[str, dict[str, int]]]:
        """The warm run (batch 1, batch 10, the stage split, the draft comparison); labels per group."""
        self._phase("uploading frames")
        messages = {
            name: upload_group(self.stack, data, camera_for(self.path, name))
            for name, data in self.groups.items()
        }
        plan = {
            **self.base_plan,
            "mode": "full",
            "cold_event": sqs_events(self.stack, messages["cold"], 1)[0],
            "warmup_events": sqs_events(self.stack, messages["warmup"], 1),
            "batch_1_events": sqs_events(self.stack, messages["batch1"], 1),
            "batch_10_events": sqs_events(self.stack, messages["batch10"], self.config.batch_size),
            "stage_frames": frame_refs(messages["stages"]),
            "draft_frame_paths": [str(frame.path) for frame in self.frames] if self.path != REFERENCE else [],
            "batch_10_frame_paths": [str(frame.path) for frame in self.frames],  # the batch10 group's bytes
            "batch_1_frame_paths": [str(frame.path) for frame in self.frames],  # the batch1 group's bytes
        }

        def on_progress(phase: str, done: int, total: int) -> None:
            self.progress.update(
                self.task, description=f"{self.path}: {phase}", completed=done, total=total or None
            )

        full = self._spawn(plan, "full", on_progress)
        labels = {}
        for name, data in self.groups.items():
            # The stage split writes its items itself, one per frame, like the handler would.
            labels[name] = verify_results(self.stack, camera_for(self.path, name), len(data))
        return full, labels

    def profile(self) -> dict[str, Any]:
        """cProfile of warm frames and onnxruntime's op profile, in their own child."""
        camera = camera_for(self.path, "profile")
        profile_messages = upload_group(
            self.stack, self.frame_bytes[: self.config.profile_frames + 1], camera
        )
        plan = {
            **self.base_plan,
            "mode": "profile",
            "cold_event": sqs_events(self.stack, profile_messages[:1], 1)[0],
            "profile_events": sqs_events(self.stack, profile_messages[1:], 1),
            "profile_path": str(self.config.work_dir / f"profile-{self.path}.txt"),
            "onnx_profile_frames": [str(frame.path) for frame in self.frames[: self.config.profile_frames]],
        }
        self._phase("profiling")
        profile = self._spawn(plan, "profile").result
        verify_results(self.stack, camera, len(profile_messages))
        delete_group(self.stack, camera)
        return profile

    def clean_up(self) -> None:
        for name in self.groups:
            delete_group(self.stack, camera_for(self.path, name))
        for attempt in range(self.config.cold_starts):
            delete_group(self.stack, camera_for(self.path, f"cold{attempt}"))
        self.progress.update(self.task, description=f"{self.path}: done", completed=1, total=1)
