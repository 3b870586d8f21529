"""`camsort demo --loop`: the labelling loop end to end, on the local system.

1. the demo as usual (model, moto, worker, cameras): round 1 of frames lands in the bucket;
2. ``camsort sample`` on the bucket with the live model (time-balanced, diverse in its features);
3. the frames labelled through the label page's own HTTP API (``POST /api/label``), the answer
   taken from the simulator's ground truth, standing in for a person;
4. ``training.pipeline.train`` on the demo's original training frames plus the set's
   ``labels.jsonl`` (the public entry point, as ``camsort train DATA SET/labels.jsonl``);
5. ``camsort candidate``: the new model shadows the live one; round 2 of frames is scored by both;
6. ``camsort compare`` on round 2, then ``camsort promote`` with the cross-validation gate (the
   agreement gate asks a better model to agree with a worse one: not this loop's question);
7. top-1 accuracy of both models on round-1 frames nobody labelled (neither model trained on
   them), printed side by side, with the loop's timings.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from functions import env
from functions.frames.image_loader import load_image
from functions.frames.manifest import read_manifest
from functions.frames.model import ModelSession
from infra.demo.camera_run import run_cameras
from infra.demo.model import demo_model_key
from infra.demo.run import demo_endpoint, deploy, prepare_model
from infra.demo.settings import DemoSettings
from infra.demo.shadow import demo_stage
from infra.labelling.label_server import serving
from infra.labelling.label_set import LABELS_FILE, LabelStore
from infra.labelling.sample import SampleOptions, sample_command
from infra.ops.compare import compare_command
from infra.ops.promote import DeployConfig, Gates, ModelPin, PromotionRefusedError, promote, set_candidate


@dataclasses.dataclass(frozen=True)
class LoopSettings:
    per_camera: int = 30  # frames labelled per camera
    candidates: int = 60  # time-balanced candidates per camera (the most different half is labelled)
    # Both models fp32: int8 calibration and its guard's second cross-validation would double
    # the training time and raise the peak memory, and the loop's question is what labels buy.
    precision: str = "fp32"


def run_loop(settings: DemoSettings, loop: LoopSettings, console: Console | None = None) -> dict[str, Any]:
    console = console or Console()
    # The loop labels sampled frames from the simulator's truth: no unfamiliar uploads (no truth).
    settings = dataclasses.replace(settings, precision=loop.precision, unfamiliar_per_kind=0)
    settings.demo_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    started = time.monotonic()
    live_dir = prepare_model(settings, console)
    with demo_endpoint(settings, console) as endpoint_url:
        stack, environment = deploy(settings, live_dir, endpoint_url, console)
        first = run_cameras(settings, stack, environment, console)
        bucket, s3 = stack.names.bucket, stack.client("s3")
        truth = {f"s3://{bucket}/{o.key}": str(o.label) for o in first.simulated.frames}
        set_dir = settings.demo_dir / f"loop-set-{datetime.now(UTC):%Y%m%dT%H%M%S}"
        mark = time.monotonic()
        rows = sample_command(
            f"s3://{bucket}/{stack.names.frames_prefix}", set_dir,
            SampleOptions(per_camera=loop.per_camera, candidates=loop.candidates),
            model_uri=str(live_dir), output_format="camsort", s3_client=s3, console=console,
        )  # fmt: skip
        timings["sample_s"] = time.monotonic() - mark
        timings["label_s"] = label_through_the_page(set_dir, rows, truth)
        console.print(f"Labelled {len(rows)} frames through the page's API in {timings['label_s']:.2f} s.")
        mark = time.monotonic()
        candidate_dir = train_candidate(settings, set_dir, s3, console)
        timings["train_s"] = time.monotonic() - mark
        timings["first_model_s"] = time.monotonic() - started
        held_out = sorted(set(truth) - {row["key"] for row in rows})
        accuracy = paired_gain(
            top1_right(live_dir, held_out, truth, s3), top1_right(candidate_dir, held_out, truth, s3)
        )
        outcome = shadow_compare_promote(
            settings, stack, environment, live_dir, candidate_dir, accuracy, len(held_out), console
        )
    timings["total_s"] = time.monotonic() - started
    summary = {
        "labelled": len(rows),
        "held_out": len(held_out),
        "accuracy": accuracy,
        "timings": timings,
        **outcome,
    }
    summary["labels_per_minute"] = round(len(rows) / max(timings["label_s"], 1e-9) * 60, 1)
    console.print(_table(summary))
    (settings.demo_dir / "loop-report.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


# The page is on 127.0.0.1: never route it through the HTTP(S)_PROXY of the environment.
_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def label_through_the_page(set_dir: Path, rows: list[dict[str, Any]], truth: dict[str, str]) -> float:
    """POST one label per frame to the page's API (a person's clicks); seconds taken."""
    store = LabelStore.open(set_dir)
    with serving(store) as url:
        mark = time.monotonic()
        for row in rows:
            body = json.dumps({"ids": [row["id"]], "label": truth[row["key"]]}).encode()
            request = urllib.request.Request(
                f"{url}/api/label", data=body, headers={"content-type": "application/json"}
            )
            with _LOOPBACK.open(request, timeout=10) as response:
                response.read()
        return time.monotonic() - mark


def train_candidate(settings: DemoSettings, set_dir: Path, s3: Any, console: Console) -> Path:
    from training.pipeline import Frames, SingleLabel, TrainSettings, train

    original = Path(settings.cache_dir) / "demo-data" / demo_model_key(settings)
    sources = [str(original)] if original.is_dir() else []
    out = set_dir / "model"
    train(
        SingleLabel(), Frames([*sources, str(set_dir / LABELS_FILE)], s3), out,
        TrainSettings(
            weights=settings.weights, folds=settings.folds, seed=settings.seed, precision=settings.precision,
            cache_dir=Path(settings.cache_dir),
        ),
        console=console,
    )  # fmt: skip
    return out


def top1_right(model_dir: Path, keys: list[str], truth: dict[str, str], s3: Any) -> np.ndarray:
    """bool [len(keys)]: the model's top-1 label is the frame's true label."""
    model = ModelSession.open(str(model_dir))
    pixels = []
    for key in keys:
        bucket, _, name = key[len("s3://") :].partition("/")
        pixels.append(load_image(s3.get_object(Bucket=bucket, Key=name)["Body"].read(), source=key))
    probabilities = np.concatenate(
        [model.predict(np.stack(pixels[i : i + 16]))[0] for i in range(0, len(pixels), 16)]
    )
    answers = [model.labels[i] for i in probabilities.argmax(axis=1)]
    return np.array([a == truth[k] for a, k in zip(answers, keys, strict=True)])


def paired_gain(live_right: np.ndarray, candidate_right: np.ndarray) -> dict[str, Any]:
    """Accuracies on the same frames and the exact one-sided McNemar test of "the candidate is better".

    Only the frames the two models answer differently carry evidence: ``gained`` (candidate right,
    live wrong) against ``lost``; under "no better", each such frame is a fair coin, so
    p = P(Binomial(gained + lost, 1/2) >= gained).
    """
    gained = int(np.sum(candidate_right & ~live_right))
    lost = int(np.sum(live_right & ~candidate_right))
    n = gained + lost
    p = sum(math.comb(n, k) for k in range(gained, n + 1)) / 2**n if n else 1.0
    return {
        "live": round(float(np.mean(live_right)), 4),
        "candidate": round(float(np.mean(candidate_right)), 4),
        "gained": gained,
        "lost": lost,
        "p_value": round(p, 4),
    }


def shadow_compare_promote(
    settings, stack, environment, live_dir, candidate_dir, accuracy: dict[str, float], held_out: int, console
) -> dict[str, Any]:
    stage = demo_stage(settings, stack)
    live = read_manifest(live_dir)
    stage.write(
        DeployConfig(live=ModelPin(live.model_version, environment[env.MODEL_URI], live.model_sha256))
    )
    now = datetime.now(UTC)
    config = set_candidate(stage, candidate_dir, version=None, sample_rate=1.0, live_uri=None, now=now)
    console.print(f"[bold]camsort candidate[/] {candidate_dir}: scores every frame of round 2 in shadow")
    second = run_cameras(
        dataclasses.replace(settings, seed=settings.seed + 101),
        stack,
        environment | config.function_environment(),
        console,
    )
    comparison = compare_command(
        stage.target, since=second.started_at, camera=None, candidate_version=None, worst=5,
        as_json=False, html_path=settings.demo_dir / "loop-compare.html", thumbnails="download", console=console,
    )  # fmt: skip
    promoted = _promote(stage, accuracy, held_out, console)
    return {"shadow_frames": comparison.frames, "agreement": comparison.agreement, "promoted": bool(promoted)}


SIGNIFICANCE = 0.05  # the held-out gain must be this unlikely under "the candidate is no better"


def _promote(stage, accuracy: dict[str, Any], held_out: int, console: Console) -> bool:
    """`camsort promote` with the cross-validation gate; when it refuses, the held-out evidence decides.

    The two cross-validations ran on different training sets (the live model never saw the
    labelled frames), so the gate compares unlike figures. The held-out frames are the same for
    both models and neither trained on them: the candidate is promoted on them only when its gain
    is significant (exact McNemar, p < 0.05), recorded as forced with the figures as its reason.
    """
    now = datetime.now(UTC)
    try:
        promote(stage, Gates(kind="cv"), force=False, reason="camsort demo --loop", now=now)
        console.print("[bold green]promoted[/] (cross-validation gate passed)")
        return True
    except PromotionRefusedError as refused:
        console.print(f"[yellow]{refused}[/]")
    evidence = (
        f"held-out top-1 {accuracy['candidate']:.3f} (candidate) vs {accuracy['live']:.3f} (live) on {held_out} "
        f"frames neither model trained on; {accuracy['gained']} frame(s) gained, {accuracy['lost']} lost, "
        f"McNemar p = {accuracy['p_value']:.3g}"
    )
    if accuracy["p_value"] >= SIGNIFICANCE:
        console.print(f"[bold yellow]not promoted:[/] {evidence} (needs p < {SIGNIFICANCE})")
        return False
    promote(stage, Gates(kind="cv"), force=True, reason=f"camsort demo --loop: {evidence}", now=now)
    console.print(f"[bold green]promoted[/] on the held-out evidence ({evidence}); recorded as forced")
    return True


def _table(summary: dict[str, Any]) -> Table:
    table = Table(title="camsort demo --loop")
    table.add_column("figure")
    table.add_column("value", justify="right")
    accuracy, timings = summary["accuracy"], summary["timings"]
    table.add_row(
        f"top-1 accuracy, live model ({summary['held_out']} held-out frames)", f"{accuracy['live']:.3f}"
    )
    table.add_row("top-1 accuracy, new model (same frames)", f"{accuracy['candidate']:.3f}")
    table.add_row(
        "frames gained / lost, McNemar p",
        f"{accuracy['gained']} / {accuracy['lost']}, {accuracy['p_value']:.3g}",
    )
    table.add_row("frames labelled", str(summary["labelled"]))
    table.add_row(
        "labels per minute (scripted, through the page's API)", f"{summary['labels_per_minute']:.0f}"
    )
    table.add_row("sample / train (s)", f"{timings['sample_s']:.1f} / {timings['train_s']:.1f}")
    table.add_row("time to first model (s, from start)", f"{timings['first_model_s']:.1f}")
    agreement = summary["agreement"]
    shown = "-" if agreement is None else f"{agreement:.1%}"
    table.add_row("shadow frames / agreement with live", f"{summary['shadow_frames']} / {shown}")
    table.add_row("promoted", "yes" if summary["promoted"] else "no")
    table.add_row("total (s)", f"{timings['total_s']:.1f}")
    return table
