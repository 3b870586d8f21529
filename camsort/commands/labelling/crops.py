"""`camsort crops SOURCE --config cameras.json OUT`: every frame's regions as crops, into folders."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("crops")
@click.argument("source")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--config",
    "config",
    required=True,
    help='The cameras\' regions: one camera\'s {"regions": [...]} or {"cameras": {id: {"regions": [...]}}} '
    "(local or s3://); a frame's camera is the first folder of its key.",
)
@click.option(
    "--labels-file",
    default=None,
    help="Labels per region (key,region,label: CSV or JSONL): write only the labelled regions, into "
    "OUT/<model>/<label>/ (default: every region into OUT/<model>/_unlabeled/<region>/).",
)
@click.option("--model", "model_name", default=None, help="Only the regions answered by this named model.")
@click.option("--endpoint-url", default=None, help="S3 endpoint for s3:// paths (e.g. a local moto server).")
def crops(
    source: str, out_dir: Path, config: str, labels_file: str | None, model_name: str | None, endpoint_url
) -> None:
    """Cut the regions of every frame under SOURCE (a folder or s3://bucket/prefix/, frames under
    <camera_id>/) with the function's crop function and write them to OUT_DIR as 224x224 PNGs."""
    from training.data.crops import crops_command

    crops_command(
        source, config, out_dir, endpoint_url=endpoint_url, labels_file=labels_file, model_name=model_name
    )
