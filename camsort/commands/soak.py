"""`camsort soak`: concurrent cameras, worker processes, faults and kills; exit 1 on any loss."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("soak")
@click.option("--frames", type=click.IntRange(1), default=2000, show_default=True, help="Objects to upload.")
@click.option("--cameras", type=click.IntRange(1), default=20, show_default=True, help="Concurrent cameras.")
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True, help="Worker processes.")
@click.option(
    "--kills", type=click.IntRange(0), default=4, show_default=True, help="SIGKILLs of worker processes."
)
@click.option("--fault-rate", type=click.FloatRange(0, 0.5), default=0.05, show_default=True,
              help="Share of the function's AWS calls that fail.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--model", "model_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="An exported model directory; default: the demo's cached model.")  # fmt: skip
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("soak-report.json"), show_default=True, help="Where the JSON report goes.")  # fmt: skip
@click.option("--endpoint-url", default=None, help="A running moto server; default: start one.")
@click.option("--regions-cameras", type=click.IntRange(0), default=0, show_default=True,
              help="Cameras with 4 regions each (cam-01, ...): region items, then the frame item.")  # fmt: skip
def soak(
    frames, cameras, workers, kills, fault_rate, seed, model_dir, report_path, endpoint_url, regions_cameras
) -> None:
    """Upload, inject faults and kills, then account for every object version (the audit)."""
    from camsort.quiet import quiet_tensorflow

    quiet_tensorflow()  # before anything imports TensorFlow
    from infra.soak.run import SoakSettings, soak_command

    settings = SoakSettings(
        frames=frames,
        cameras=cameras,
        workers=workers,
        kills=kills,
        fault_rate=fault_rate,
        seed=seed,
        model_dir=model_dir,
        report_path=report_path,
        endpoint_url=endpoint_url,
        regions_cameras=regions_cameras,
    )
    raise SystemExit(soak_command(settings))
