"""What regions cost per frame: ``python -m bench.perf.regions [--model-dir DIR] [--frames N]``.

A camera with k regions costs one decode per frame (``load_regions``, at the JPEG draft the
smallest box allows) and k crops through its model; the function stacks every crop of one model
across the batch into one ONNX call. Measured here exactly so, for k = 1, 4 and 8 regions of a
car-park layout (2 rows of 4 bays, each box 0.2 x 0.35 of the frame: ~256 x 252 pixels of a
1280 x 720 frame, so every k decodes at the same scale and the ratio is the cost of the crops and
their inference), plus the whole frame without regions (today's path, ``load_image``) for
reference. Per-frame time = (decodes + one predict + decisions of a batch of 10 frames) / 10,
the median over the batches; the k are interleaved batch by batch so that a machine's changing
load weighs on every k alike. Reported as ratios to one region, all from one process and model.

``make bench`` runs it on the bench's frames and its fp32 model (``bench/regions.json`` and a
section of ``bench/results.md``); ``--model-dir`` times another model directory.
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

from functions.frames.regions import Box

REGION_COUNTS = (1, 4, 8)
BATCH = 10  # the function's SQS batch size (serverless.yml batchSize)
# Two rows of four bays across the frame; the first k are used.
BAYS = tuple(
    Box(round(0.02 + 0.24 * column, 2), top, round(0.22 + 0.24 * column, 2), top + 0.35)
    for top in (0.1, 0.55)
    for column in range(4)
)
MARKERS = ("<!-- regions:start -->", "<!-- regions:end -->")


def region_cost(model: Any, frames: list[bytes], counts: tuple[int, ...] = REGION_COUNTS) -> dict[str, Any]:
    """Median per-frame ms (total, decode, inference) for each k, and the whole frame; ratios to k = 1."""
    from functions.frames.decision import decide_for
    from functions.frames.image_loader import load_image, load_regions

    manifest = model.manifest
    cases: dict[str, list[Box] | None] = {f"{k} regions": list(BAYS[:k]) for k in counts}
    cases["whole frame"] = None
    samples: dict[str, dict[str, list[float]]] = {
        name: {"total": [], "decode": [], "inference": []} for name in cases
    }
    batches = [frames[start : start + BATCH] for start in range(0, len(frames) - BATCH + 1, BATCH)]
    for index, batch in enumerate(batches):
        names = list(cases)
        for name in names[index % len(names) :] + names[: index % len(names)]:  # rotate the order
            boxes = cases[name]
            started = time.perf_counter()
            if boxes is None:
                crops = [load_image(data, source="bench") for data in batch]
            else:
                crops = [crop for data in batch for crop in load_regions(data, boxes, source="bench")]
            decoded = time.perf_counter()
            probabilities, _features = model.predict(np.stack(crops))
            inferred = time.perf_counter()
            decide_for(manifest.task, probabilities, model.labels, manifest.thresholds)
            finished = time.perf_counter()
            for part, seconds in (
                ("total", finished - started),
                ("decode", decoded - started),
                ("inference", inferred - decoded),
            ):
                samples[name][part].append(seconds * 1000.0 / len(batch))
    one = statistics.median(samples[f"{counts[0]} regions"]["total"])
    rows = {
        name: {
            **{f"{part}_ms": round(statistics.median(values), 2) for part, values in parts.items()},
            "ratio_to_one_region": round(statistics.median(parts["total"]) / one, 2),
        }
        for name, parts in samples.items()
    }
    return {
        "frames": len(batches) * BATCH,
        "batch": BATCH,
        "boxes": [box.to_list() for box in BAYS],
        "model": {
            "version": manifest.model_version,
            "precision": manifest.precision,
            "backbone": manifest.backbone,
        },
        "rows": rows,
    }


def regions_markdown(figures: dict[str, Any]) -> str:
    lines = [
        MARKERS[0],
        "#### Regions: per-frame time with k regions (one decode, k crops)",
        "",
        f"{figures['frames']} frames of 1280x720 in batches of {figures['batch']}, model "
        f"{figures['model']['version']} ({figures['model']['precision']}); medians per frame "
        "(`python -m bench.perf.regions`, docs/regions.md).",
        "",
        "| | per frame ms | decode ms | inference ms | ratio to 1 region |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in figures["rows"].items():
        lines.append(
            f"| {name} | {row['total_ms']:.1f} | {row['decode_ms']:.1f} | {row['inference_ms']:.1f} "
            f"| {row['ratio_to_one_region']:.2f} |"
        )
    return "\n".join([*lines, "", MARKERS[1], ""])


def run_region_cost(config: Any, model_dir: Path | None = None) -> dict[str, Any]:
    """The stage as `make bench` runs it: the bench frames through its fp32 model (or ``model_dir``)."""
    from bench.decode_memory import write_section
    from bench.inputs import bench_frames, ensure_model, training_set
    from functions.frames.model import ModelSession, available_cpus

    directory = model_dir or ensure_model(config, "fp32", training_set(config))
    model = ModelSession.open(str(directory), threads=available_cpus())
    figures = region_cost(model, [frame.read() for frame in bench_frames(config)])
    config.out_dir.mkdir(parents=True, exist_ok=True)
    (config.out_dir / "regions.json").write_text(json.dumps(figures, indent=2) + "\n")
    write_section(config.out_dir / "results.md", regions_markdown(figures), MARKERS)
    return figures


def main(argv: list[str] | None = None) -> int:
    from bench.config import BenchConfig

    parser = argparse.ArgumentParser(prog="python -m bench.perf.regions", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model-dir", type=Path, default=None, help="a model directory (default: the bench's fp32)"
    )
    parser.add_argument("--frames", type=int, default=200, help="bench frames (a multiple of 10)")
    parser.add_argument(
        "--out-dir", type=Path, default=None, help="where regions.json goes (default: bench/)"
    )
    args = parser.parse_args(argv)
    config = BenchConfig(frames=args.frames, **({"out_dir": args.out_dir} if args.out_dir else {}))
    print(regions_markdown(run_region_cost(config, args.model_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
