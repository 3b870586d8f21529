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
@click.option("--width", default=1280, show_default=True, type=click.IntRange(16))
@click.option("--height", default=720, show_default=True, type=click.IntRange(16))
def synth(out_dir: Path, per_label: int, seed: int, labels: tuple[str, ...], width: int, height: int) -> None:
    """Write OUT_DIR/<label>/<label>-<seed>-<i>.jpg: a training set for `camsort train OUT_DIR`."""
    from rich.console import Console
    from rich.table import Table

    from training.synthetic import LABELS, write_dataset

    counts = write_dataset(
        out_dir, per_label, seed=seed, labels=labels or LABELS, width=width, height=height, progress=True
    )
    table = Table("label", "frames", title=f"synthetic frames in {out_dir}")
    for label, count in counts.items():
        table.add_row(label, str(count))
    Console().print(table)
