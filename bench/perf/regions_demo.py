"""What the demo's regions camera costs on its own: wall seconds and peak RSS of the process tree.

``python -m bench.perf.regions_demo --model DIR --cache-dir DIR`` runs ``infra.demo.regions.
run_regions_camera`` as `camsort demo` does after its cameras (a moto server, the local stack,
the default model ``--model`` uploaded and pinned), while ``bench.demo_memory.StageMemory``
samples the RSS of this process and its children (the moto server included). Stages: training
``bay`` and ``gate`` (empty cache: the crops' features computed; a second run: the cached
models), rendering and uploading the sequence, and the function answering it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path
from typing import Any

from bench.demo_memory import StageMemory, print_stages

STAGES = (
    ("train bay + gate", "infra.demo.regions", "ensure_region_models"),
    ("render + upload the sequence", "infra.demo.regions", "upload_sequence"),
    ("upload models + regions", "infra.demo.regions", "deploy_regions"),
    ("function answers the sequence", "infra.local.worker", "SqsWorker.run_until_drained"),
    ("score", "infra.demo.regions", "score_regions"),
)


def _patch(memory: StageMemory) -> None:
    for stage, module_name, attribute in STAGES:
        owner: Any = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        setattr(owner, name, memory.wrap(stage, getattr(owner, name)))


def profile_regions(model_dir: Path, cache_dir: Path, interval_s: float = 0.1) -> dict[str, Any]:
    from rich.console import Console

    from functions import env
    from functions.frames.manifest import read_manifest
    from infra.demo.regions import run_regions_camera
    from infra.demo.settings import DemoSettings
    from infra.deploy.topology import StackNames
    from infra.local.function_env import function_environment
    from infra.local.moto_server import MotoServer
    from infra.local.stack import create_local_stack, upload_model

    settings = DemoSettings(cache_dir=cache_dir, stage="regionsbench")
    settings.demo_dir.mkdir(parents=True, exist_ok=True)
    memory = StageMemory(interval_s)
    _patch(memory)
    server = MotoServer(log_path=settings.demo_dir / "moto.log").start()
    try:
        stack = create_local_stack(
            server.endpoint_url,
            StackNames.for_stage(settings.stage),
            function_timeout_s=settings.function_timeout_s,
        )
        uri = upload_model(stack, model_dir, version=read_manifest(model_dir).model_sha256[:12])
        environment = function_environment(
            stack, uri, extra={env.MODEL_CACHE_DIR: str(settings.demo_dir / "function-model-cache")}
        )
        began = time.perf_counter()
        with memory:
            figures = run_regions_camera(settings, stack, environment, model_dir, Console(stderr=True))
        seconds = time.perf_counter() - began
    finally:
        server.stop()
    stages = memory.rows([stage for stage, _, _ in STAGES])
    return {"seconds": round(seconds, 1), "stages": stages, "score": figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="the default model (the demo's)")
    parser.add_argument("--cache-dir", type=Path, required=True, help="an empty directory: a first run")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between RSS samples")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures here (JSON)")
    args = parser.parse_args()
    result = profile_regions(args.model, args.cache_dir, args.interval)
    print_stages(result["stages"])
    print(f"total {result['seconds']} s; score {result['score']}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
