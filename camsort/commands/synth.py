"""`camsort synth`: write a labelled folder of synthetic 1280x720 street-camera frames."""

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
@click.option("--width", default=1280, show_default=True, type=click.IntRange(16))
@click.option("--height", default=720, show_default=True, type=click.IntRange(16))
def synth(
    out_dir: Path,
    per_label: int,
    seed: int,
    labels: tuple[str, ...],
    multilabel: bool,
    tamper: bool,
    width: int,
    height: int,
) -> None:
    """Write OUT_DIR/<label>/<label>-<seed>-<i>.jpg: a training set for `camsort train OUT_DIR`."""
    from rich.console import Console
    from rich.table import Table

    from training.data.synthetic import LABELS, write_dataset, write_multilabel_dataset

    if tamper:
        from training.data.scene_tamper import tamper_summary

        if labels or multilabel:
            raise click.UsageError(
                "--tamper writes camera views; it does not combine with --label or --multilabel"
            )
        Console().print(tamper_summary(out_dir, frames=per_label, seed=seed, width=width, height=height))
        return
    if multilabel:
        if labels:
            raise click.UsageError(
                "--label picks single-label folders; it does not combine with --multilabel"
            )
        counts = write_multilabel_dataset(
            out_dir, per_label, seed=seed, width=width, height=height, progress=True
        )
    else:
        counts = write_dataset(
            out_dir, per_label, seed=seed, labels=labels or LABELS, width=width, height=height, progress=True
        )
    table = Table("label set" if multilabel else "label", "frames", title=f"synthetic frames in {out_dir}")
    for label, count in counts.items():
        table.add_row(label, str(count))
    Console().print(table)
