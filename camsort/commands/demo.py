"""`camsort demo`: the whole system on this machine (moto, the handler, simulated cameras)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("demo")
@click.option(
    "--cameras", type=click.IntRange(1, 99), default=4, show_default=True, help="Simulated cameras."
)
@click.option("--frames", type=click.IntRange(1), default=50, show_default=True, help="Frames per camera.")
@click.option(
    "--rate",
    type=click.FloatRange(0),
    default=2.0,
    show_default=True,
    help="Frames per second per camera (0: as fast as possible).",
)
@click.option(
    "--no-bad-objects", is_flag=True, help="Upload only valid frames (no truncated/empty/text/oversized)."
)
@click.option(
    "--unfamiliar-frames",
    "unfamiliar_per_kind",
    type=click.IntRange(0),
    default=2,
    show_default=True,
    help="Frames of each unfamiliar kind (photos, noise, uniform, scenes) uploaded among the cameras' "
    "frames; the demo prints how many came back unfamiliar (0: none).",
)
@click.option(
    "--no-tampers",
    is_flag=True,
    help="Leave every camera healthy (by default, mid-run the third camera is covered and the fourth turned).",
)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Use this model directory (model.onnx + manifest.json) instead of the cached/trained demo model.",
)
@click.option(
    "--weights",
    default="none",
    show_default=True,
    help="Backbone weights for training the demo model: none (random, offline) | imagenet | path.h5.",
)
@click.option(
    "--train-per-label",
    type=click.IntRange(4),
    default=60,
    show_default=True,
    help="Synthetic training frames per label for the demo model.",
)
@click.option(
    "--shadow",
    is_flag=True,
    help="Also deploy a second model as shadow candidate (--candidate, or a demo model trained with the next seed) "
    "and print the comparison.",
)
@click.option(
    "--candidate",
    "candidate_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="The shadow candidate's model directory (implies --shadow).",
)
@click.option(
    "--no-regions",
    is_flag=True,
    help="Leave out the regions camera (a car park: 6 bays and a gate, answered by the named models bay and gate).",
)
@click.option(
    "--no-fine-tune",
    is_flag=True,
    help="Train the demo model on frozen features only (skip trying to fine-tune the last stage).",
)
@click.option("--endpoint-url", default=None, help="Use this running moto server instead of starting one.")
@click.option(
    "--stage", default="local", show_default=True, help="Resource names: camsort-frames-<stage>, ..."
)
@click.option(
    "--keep-running",
    is_flag=True,
    help="Leave the moto server running afterwards, for `camsort results` (state file in the cache dir).",
)
@click.option(
    "--loop",
    is_flag=True,
    help="The labelling loop: sample the bucket, label through the label page's API (ground truth standing in "
    "for a person), train, shadow, compare, promote; prints held-out accuracy before and after.",
)
@click.option(
    "--loop-per-camera",
    type=click.IntRange(2),
    default=30,
    show_default=True,
    help="--loop: frames labelled per camera.",
)
@click.option(
    "--stop", is_flag=True, help="Stop the moto server a --keep-running demo left behind, and exit."
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cache for the demo model, logs and state [default: $CAMSORT_CACHE_DIR or ~/.cache/camsort].",
)
def demo(
    cameras: int,
    frames: int,
    rate: float,
    no_bad_objects: bool,
    unfamiliar_per_kind: int,
    no_tampers: bool,
    model_dir: Path | None,
    weights: str,
    train_per_label: int,
    shadow: bool,
    candidate_dir: Path | None,
    no_regions: bool,
    no_fine_tune: bool,
    endpoint_url: str | None,
    stage: str,
    keep_running: bool,
    loop: bool,
    loop_per_camera: int,
    stop: bool,
    cache_dir: Path | None,
) -> None:
    """Run moto + the local stack + the worker, simulate cameras, account for every frame.

    Exits non-zero when any uploaded object ends with neither a result nor a DLQ entry.
    """
    from camsort.quiet import quiet_tensorflow

    quiet_tensorflow()  # before anything imports TensorFlow
    from rich.console import Console

    from infra.demo.run import run_demo
    from infra.demo.settings import DemoSettings
    from infra.local.running import default_cache_dir, stop_demo_server

    console = Console()
    if stop:
        stop_demo_server(cache_dir, console)
        return
    settings = DemoSettings(
        cameras=cameras,
        frames_per_camera=frames,
        frames_per_second=rate,
        bad_objects=not no_bad_objects,
        unfamiliar_per_kind=unfamiliar_per_kind,
        duplicate_notification=True,
        tampers=not no_tampers,
        model_dir=model_dir,
        weights=weights,
        train_per_label=train_per_label,
        fine_tune=not no_fine_tune,
        shadow=shadow or candidate_dir is not None,
        candidate_dir=candidate_dir,
        regions=not no_regions,
        endpoint_url=endpoint_url,
        stage=stage,
        keep_running=keep_running,
        cache_dir=cache_dir or default_cache_dir(),
    )
    if loop:
        from infra.demo.loop import LoopSettings, run_loop

        summary = run_loop(settings, LoopSettings(per_camera=loop_per_camera), console)
        sys.exit(0 if summary["promoted"] else 1)
    outcome = run_demo(settings, console)
    sys.exit(outcome.exit_code)
