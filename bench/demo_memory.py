"""Where `make demo`'s first run spends its memory: peak RSS per stage of the demo model build.

``python -m bench.demo_memory --cache-dir DIR`` builds the demo model exactly as `camsort demo`'s
training child does on an empty cache (``infra.demo.model.build_demo_model`` with the default
settings: the recipe is not touched) while a sampler reads the RSS of this process and all its
children (the conversion and calibration children included) every ``--interval`` seconds. Each
stage is the time inside one function of the pipeline, wrapped here from the outside (the
innermost running stage gets the sample):

frames (``training.data.synthetic.write_dataset``), ResNet50 build (``training.features.backbone.keras_backbone``),
tf2onnx (``export.backbone.export_backbone_in_child``), int8 calibration (``export.quantize.quantize_backbone_in_child``),
the fine-tuned network into the frozen graph (``export.tuned_backbone.tuned_backbone``),
fine-tuning (``training.stages.fine_tune_step``), featurize (``training.features.featurize.featurize``),
fit (``training.fit.heads.cross_validate_heads`` and ``fit_head``), export + parity
(``training.export_step.export_and_check``); the rest is "other" (loading frames, reports).

Run it under ``/usr/bin/time -v`` for the kernel's own maximum resident set of the process.

``python -m bench.demo_memory --whole -- COMMAND...`` runs any command (`camsort demo` with
``CAMSORT_CACHE_DIR`` pointing at an empty directory: the first run) and reports the peak RSS of
its whole process tree and its wall time: what ``/usr/bin/time -v`` cannot (its maximum RSS is
the largest single process's).
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

STAGES = (
    # (stage, module, attribute): patched where the pipeline looks the name up at call time.
    ("frames", "training.data.synthetic", "write_dataset"),
    ("ResNet50 build", "training.features.backbone", "keras_backbone"),
    ("tf2onnx", "export.backbone", "export_backbone_in_child"),
    ("tf2onnx", "export.backbone", "export_backbone"),
    ("fine-tuned -> ONNX", "export.tuned_backbone", "tuned_backbone"),
    ("int8 calibration", "export.quantize", "quantize_backbone_in_child"),
    ("fine-tuning", "training.stages", "fine_tune_step"),
    ("featurize", "training.features.backbone", "featurize"),
    ("fit", "training.tasks", "cross_validate_heads"),
    ("fit", "training.sources", "fit_head"),
    ("export + parity", "training.sources", "export_and_check"),
)


def tree_rss_mib(root: Any) -> float:
    """The RSS of ``root`` (a psutil.Process) and all its descendants, in MiB."""
    total = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except Exception:  # noqa: BLE001 - the root exited
        return 0.0
    for process in processes:
        try:
            total += process.memory_info().rss
        except Exception:  # noqa: BLE001 - a child that exited between listing and reading
            continue
    return total / 2**20


def whole_tree(command: list[str], interval_s: float = 0.1) -> dict[str, Any]:
    """Run ``command``; the peak RSS of its process tree (sampled), its wall time and exit code."""
    import subprocess

    import psutil

    began = time.perf_counter()
    child = subprocess.Popen(command)
    root, peak = psutil.Process(child.pid), 0.0
    while child.poll() is None:
        peak = max(peak, tree_rss_mib(root))
        time.sleep(interval_s)
    return {"command": command, "seconds": round(time.perf_counter() - began, 1),
            "peak_tree_rss_mib": round(peak), "exit_code": child.returncode}  # fmt: skip


class StageMemory:
    """Peak RSS (MiB) of the process tree per stage, and each stage's wall seconds."""

    def __init__(self, interval_s: float) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval_s = interval_s
        self._stack: list[str] = []
        self._lock = threading.Lock()
        self.peak_mib: dict[str, float] = {}
        self.seconds: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)

    def tree_rss_mib(self) -> float:
        return tree_rss_mib(self._process)

    def _sample(self) -> None:
        while not self._stop.wait(self._interval_s):
            rss = self.tree_rss_mib()
            with self._lock:
                stage = self._stack[-1] if self._stack else "other"
                self.peak_mib[stage] = max(self.peak_mib.get(stage, 0.0), rss)

    def wrap(self, stage: str, function: Any) -> Any:
        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self._stack.append(stage)
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                with self._lock:
                    self._stack.pop()
                    self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - began

        return timed

    def rows(self, order: list[str]) -> list[dict[str, Any]]:
        """Each stage seen, in ``order`` then "other": its peak RSS (MiB) and seconds inside."""
        return [
            {
                "stage": s,
                "peak_rss_mib": round(self.peak_mib[s]),
                "seconds": round(self.seconds.get(s, 0.0), 1),
            }
            for s in dict.fromkeys([*order, "other"])
            if s in self.peak_mib
        ]

    def __enter__(self) -> StageMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def profile_demo_model(cache_dir: Path, interval_s: float = 0.1) -> dict[str, Any]:
    from rich.console import Console

    from infra.demo.model import build_demo_model
    from infra.demo.settings import DemoSettings

    memory = StageMemory(interval_s)
    for stage, module_name, attribute in STAGES:
        module = importlib.import_module(module_name)
        setattr(module, attribute, memory.wrap(stage, getattr(module, attribute)))
    began = time.perf_counter()
    with memory:
        model_dir = build_demo_model(DemoSettings(cache_dir=cache_dir), Console(stderr=True))
    stages = memory.rows([stage for stage, _, _ in STAGES])
    return {"model_dir": str(model_dir), "seconds": round(time.perf_counter() - began, 1), "stages": stages}


def print_stages(stages: list[dict[str, Any]]) -> None:
    print("| stage | peak RSS of the process tree (MiB) | seconds inside |\n|---|---:|---:|")
    for row in stages:
        print(f"| {row['stage']} | {row['peak_rss_mib']} | {row['seconds']} |")


def demo_memory_markdown(figures: dict[str, Any]) -> str:
    """bench/demo-memory.json as markdown: the stage table, then every whole-tree run (pure)."""
    lines = []
    profile = figures.get("profile")
    if profile:
        lines += [
            f"The demo model's build by stage ({profile['created_at']}, load average "
            f"{profile['load_average'][0]:.1f} at start; {profile['seconds']:.0f} s in all):",
            "",
            "| stage | peak RSS of the process tree (MiB) | seconds inside |",
            "|---|---:|---:|",
        ]
        lines += [
            f"| {row['stage']} | {row['peak_rss_mib']:,} | {row['seconds']} |" for row in profile["stages"]
        ]
        lines.append("")
    runs = [(name, run) for name, run in figures.items() if name != "profile"]
    if runs:
        lines += [
            "| run | command | wall (s) | CPU (s, user + system) | peak RSS, whole process tree (MiB) "
            "| largest single process (MiB) | load average at start |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for name, run in runs:
            # /usr/bin/time -v's figures when the run was taken under it (CPU time does not depend on
            # the machine's load the way wall time does).
            timed = run.get("time_v", {})
            cpu = f"{timed['user_s'] + timed['system_s']:.0f}" if timed else "—"
            single = f"{timed['max_rss_single_process_mib']:,}" if timed else "—"
            lines.append(
                f"| {name} | `{' '.join(run['command'])}` | {run['seconds']} | {cpu} | {run['peak_tree_rss_mib']:,} "
                f"| {single} | {run['load_average'][0]:.1f} |"
            )
    return "\n".join(lines) + "\n"


def _record(out: Path | None, name: str, figures: dict[str, Any]) -> None:
    """Merge ``figures`` into the JSON file ``out`` under ``name`` (other runs kept)."""
    if out is None:
        return
    existing = json.loads(out.read_text()) if out.is_file() else {}
    existing[name] = figures
    out.write_text(json.dumps(existing, indent=2, sort_keys=True) + "\n")


def main() -> None:
    import os
    from datetime import UTC, datetime

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, help="an empty directory: a first run")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between RSS samples")
    parser.add_argument("--out", type=Path, default=None, help="record the figures in this JSON file")
    parser.add_argument("--as", dest="name", default=None, help="their name there (default: profile / whole)")
    parser.add_argument("--whole", action="store_true", help="... -- COMMAND: its whole tree's peak RSS")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args, command = parser.parse_args(argv[:split]), argv[split + 1 :]
    stamp = {
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average": list(os.getloadavg()),
    }
    if args.whole:
        if not command:
            parser.error("--whole needs a command after --")
        figures = {**stamp, **whole_tree(command, args.interval)}
        print(json.dumps(figures))
        _record(args.out, args.name or "whole", figures)
        raise SystemExit(figures["exit_code"])
    if args.cache_dir is None:
        parser.error("--cache-dir is required (or --whole -- COMMAND...)")
    result = {**stamp, **profile_demo_model(args.cache_dir, args.interval)}
    print(demo_memory_markdown({"profile": result}))
    print(f"model {result['model_dir']}")
    _record(args.out, args.name or "profile", result)


if __name__ == "__main__":
    main()
