"""`camsort bench`: the notebook way vs our handler path (fp32, int8), one run, one machine."""

from __future__ import annotations

from pathlib import Path

import click

PATH_CHOICES = ("reference", "fp32", "int8")


@click.command()
@click.option("--frames", default=200, show_default=True, help="Bench frames (1280x720 synthetic JPEGs).")
@click.option(
    "--train-per-label",
    default=30,
    show_default=True,
    help="Synthetic training frames per label (models are cached).",
)
@click.option(
    "--weights",
    default="none",
    show_default=True,
    help="ResNet50 weights: imagenet (downloads once), none (seeded random init) or a notop .h5 path.",
)
@click.option("--seed", default=0, show_default=True)
@click.option(
    "--cold-starts", default=3, show_default=True, help="Fresh processes per path for the cold start median."
)
@click.option(
    "--paths",
    "paths",
    multiple=True,
    type=click.Choice(PATH_CHOICES),
    help="Run only these paths (repeatable; default all three).",
)
@click.option(
    "--profile/--no-profile", default=True, show_default=True, help="cProfile + onnxruntime op profile."
)
@click.option(
    "--package/--no-package", default=True, show_default=True, help="Build the Lambda zip to measure it."
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where results.json / results.md go (default: bench/ in the repository).",
)
@click.option(
    "--perf/--no-perf",
    default=True,
    show_default=True,
    help="The performance phases: GEMM limit, onnxruntime sweep, added latency, cold start, reduce_range, price.",
)
@click.option(
    "--decode-memory/--no-decode-memory",
    default=True,
    show_default=True,
    help="Peak RSS of crafted 40 MP PNGs (every colour type and bit depth), alone and ten at a time.",
)
@click.option(
    "--regions/--no-regions",
    default=True,
    show_default=True,
    help="Per-frame time with 1, 4 and 8 regions (one decode, k crops), as ratios to one region.",
)
@click.option(
    "--only-perf", is_flag=True, help="Skip the (a)/(b)/(c) comparison; run only the --perf phases."
)
@click.option("--latency-frames", default=30, show_default=True, help="Frames per added-latency cell.")
@click.option(
    "--guard/--no-guard", default=True, show_default=True, help="int8 guard with/without reduce_range."
)
@click.option(
    "--bill-only",
    "bill_model",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Only count the requests per frame through the local system with this model directory and "
    "re-price the last bench/perf.json (its timings kept): for a machine too busy to time anything.",
)
def bench(
    frames,
    train_per_label,
    weights,
    seed,
    cold_starts,
    paths,
    profile,
    package,
    out_dir,
    perf,
    decode_memory,
    regions,
    only_perf,
    latency_frames,
    guard,
    bill_model,
) -> None:
    """Time (a) the notebook way, (b) our handler fp32 and (c) int8 on the same frames.

    Writes bench/results.json and bench/results.md (markdown tables, also rendered on the docs site), then
    (--perf) bench/perf.json and the "Performance" section of results.md; (--decode-memory)
    bench/decode-memory.json and its section.
    """
    from camsort.quiet import quiet_tensorflow

    quiet_tensorflow()  # before anything imports TensorFlow
    from bench.config import BenchConfig
    from bench.perf.run import PerfOptions, run_all, update_bill

    options = {
        "frames": frames,
        "train_per_label": train_per_label,
        "weights": weights,
        "seed": seed,
        "cold_starts": cold_starts,
        "profile": profile,
        "package": package,
    }
    if paths:
        options["paths"] = tuple(p for p in PATH_CHOICES if p in paths)
    if out_dir is not None:
        options["out_dir"] = out_dir
    if bill_model is not None:
        update_bill(BenchConfig(**options), bill_model)
        return
    perf_options = PerfOptions(latency_frames=latency_frames, cold_starts=cold_starts, guard=guard)
    # A CamsortError becomes one line in the camsort group.
    run_all(
        BenchConfig(**options),
        perf_options,
        harness=not only_perf,
        perf=perf or only_perf,
        decode_memory=decode_memory and not only_perf,
        regions=regions and not only_perf,
    )
