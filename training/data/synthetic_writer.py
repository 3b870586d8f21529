"""`camsort synth`: which synthetic set to write, and the table of what was written."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SynthOptions:
    per_label: int = 50
    seed: int = 0
    labels: tuple[str, ...] = ()
    multilabel: bool = False
    tamper: bool = False  # fixed camera views, tampered half-way (training.data.scene_tamper)
    regions: bool = False
    frames: int = 60  # regions: per camera
    cameras: int = 1
    bays: int = 8
    sequence: bool = False
    hold: tuple[int, int] = (6, 20)
    width: int = 1280
    height: int = 720

    def check(self) -> None:
        """Refuse combinations that mean nothing (ValueError: the CLI shows a usage error)."""
        if self.multilabel and self.labels:
            raise ValueError("--label picks single-label folders; it does not combine with --multilabel")
        if self.tamper and (self.labels or self.multilabel or self.regions):
            raise ValueError(
                "--tamper writes camera views; it does not combine with --label, --multilabel or --regions"
            )
        if self.regions and (self.multilabel or self.labels):
            raise ValueError("--regions writes car-park frames: drop --label / --multilabel")
        if self.sequence and not self.regions:
            raise ValueError("--sequence orders car-park frames in time: it needs --regions")
        if self.sequence and self.cameras != 1:
            raise ValueError("--sequence follows one camera: drop --cameras")


def write_synthetic(out_dir: Path, options: SynthOptions) -> dict[str, int]:
    """Write the set ``options`` ask for under ``out_dir``; prints and returns the counts."""
    from rich.console import Console
    from rich.table import Table

    from training.data import synthetic, synthetic_regions

    options.check()
    size = {"width": options.width, "height": options.height, "progress": True}
    console = Console()
    if options.tamper:
        from training.data.scene_tamper import tamper_summary

        console.print(
            tamper_summary(
                out_dir,
                frames=options.per_label,
                seed=options.seed,
                width=options.width,
                height=options.height,
            )
        )
        return {}
    if options.regions:
        if options.sequence:
            written, events = synthetic_regions.write_regions_sequence(
                out_dir, options.frames, seed=options.seed, bays=options.bays, hold=options.hold, **size
            )
        else:
            written, events = (
                synthetic_regions.write_regions_dataset(
                    out_dir,
                    options.frames,
                    cameras=options.cameras,
                    seed=options.seed,
                    bays=options.bays,
                    **size,
                ),
                [],
            )
        counts = dict(
            sorted(Counter(f"{r}={s}" for frame in written for r, s in frame.states.items()).items())
        )
        table = Table("region=state", "frames", title=f"car-park frames in {out_dir} ({len(written)} frames)")
        for name, count in counts.items():
            table.add_row(name, str(count))
        console.print(table)
        console.print(
            f"labels: {out_dir / synthetic_regions.LABELS_FILENAME}; regions: {out_dir / synthetic_regions.CAMERAS_FILENAME}"
            + (
                f"; {len(events)} events in {out_dir / synthetic_regions.SEQUENCE_FILENAME}"
                if options.sequence
                else ""
            )
        )
        return counts
    if options.multilabel:
        counts = synthetic.write_multilabel_dataset(out_dir, options.per_label, seed=options.seed, **size)
    else:
        counts = synthetic.write_dataset(
            out_dir, options.per_label, seed=options.seed, labels=options.labels or synthetic.LABELS, **size
        )
    table = Table(
        "label set" if options.multilabel else "label", "frames", title=f"synthetic frames in {out_dir}"
    )
    for label, count in counts.items():
        table.add_row(label, str(count))
    console.print(table)
    return counts
