"""`camsort synth`: write a labelled folder of synthetic 1280x720 street-camera (or car-park) frames."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("synth")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--per-label", default=50, show_default=True, type=click.IntRange(1), help="Frames per label.")
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Same seed, same frames (byte for byte)."
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    type=click.Choice(["bus", "car", "empty"]),
    help="Only these labels (repeatable; default: all three).",
)
@click.option(
    "--multilabel",
    is_flag=True,
    help="Write every label set of {bus, car, night} instead (OUT_DIR/bus_car_night/..., none/ = no label), "
    "--per-label frames per set: for `camsort train OUT_DIR --task multilabel`.",
)
@click.option(
    "--tamper",
    is_flag=True,
    help="Write fixed camera views instead, tampered half-way (cam-01 covered, cam-02 defocused, cam-03 "
    "moved, cam-04 dark, cam-05 healthy), as OUT_DIR/<camera>/<capture time>.jpg with OUT_DIR/truth.json: "
    "--per-label frames per camera.",
)
@click.option(
    "--regions",
    is_flag=True,
    help="Car parks seen by fixed cameras instead: bays (model `bay`: empty/occupied) and a gate (model "
    "`gate`: closed/open), --frames frames per camera, with OUT_DIR/labels.jsonl (key, region, label), "
    "OUT_DIR/cameras.json and OUT_DIR/regions/<camera>.json.",
)
@click.option(
    "--frames", default=60, show_default=True, type=click.IntRange(1), help="--regions: frames per camera."
)
@click.option(
    "--cameras", default=1, show_default=True, type=click.IntRange(1), help="--regions: car parks (cameras)."
)
@click.option(
    "--bays", default=8, show_default=True, type=click.IntRange(2, 16), help="--regions: bays per car park."
)
@click.option(
    "--sequence",
    is_flag=True,
    help="--regions: one camera's frames in time order, each region holding its state for --hold frames "
    "before it changes; OUT_DIR/sequence.json lists the frames and the events.",
)
@click.option(
    "--hold",
    nargs=2,
    type=click.IntRange(1),
    default=(6, 20),
    show_default=True,
    help="--sequence: the shortest and the longest run of frames a region keeps its state.",
)
@click.option("--width", default=1280, show_default=True, type=click.IntRange(16))
@click.option("--height", default=720, show_default=True, type=click.IntRange(16))
def synth(out_dir: Path, **options) -> None:
    """Write OUT_DIR/<label>/<label>-<seed>-<i>.jpg: a training set for `camsort train OUT_DIR`."""
    from training.data.synthetic_writer import SynthOptions, write_synthetic

    try:
        write_synthetic(out_dir, SynthOptions(**options))
    except ValueError as error:
        raise click.UsageError(str(error)) from error
