"""`camsort sample SOURCE --per-camera N`: the frames worth labelling, as a labelling set."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("sample")
@click.argument("source")
@click.option("--per-camera", type=click.IntRange(1), required=True, help="Frames to keep per camera.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The labelling set directory to write (manifest.jsonl, thumbs/, set.json).",
)
@click.option(
    "--candidates",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="Time-balanced candidates per camera, from which the most different (or uncertain) are kept.",
)
@click.option(
    "--model",
    "model_uri",
    default=None,
    help="The live model (directory or s3://bucket/models/<version>/): its features pick diverse frames, its "
    "guesses show on the page. Without it: dhash distance, and --labels names the choices.",
)
@click.option(
    "--uncertain", is_flag=True, help="Keep the frames the model was least sure of (smallest margin)."
)
@click.option(
    "--labels", default=None, help="Comma-separated labels when there is no --model (e.g. bus,car,empty)."
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["camsort", "label-studio"]),
    default="camsort",
    show_default=True,
    help="label-studio also writes Label Studio tasks (image URLs presigned for s3://, else served by camsort label).",
)
@click.option(
    "--port", default=8765, show_default=True, help="The port `camsort label` will serve local frames on."
)
@click.option(
    "--endpoint-url",
    default=None,
    help="S3 endpoint for an s3:// SOURCE or model (e.g. a local moto server).",
)
def sample(
    source: str,
    per_camera: int,
    out: Path,
    candidates: int,
    model_uri: str | None,
    uncertain: bool,
    labels: str | None,
    output_format: str,
    port: int,
    endpoint_url: str | None,
) -> None:
    """Pick frames to label from SOURCE (a folder or s3://bucket/prefix/ of <camera>/ folders)."""
    from infra.labelling.sample import SampleOptions, s3_client_for, sample_command

    options = SampleOptions(
        per_camera=per_camera,
        candidates=candidates,
        uncertain=uncertain,
        labels=tuple(label.strip() for label in (labels or "").split(",") if label.strip()),
    )
    sample_command(
        source,
        out,
        options,
        model_uri=model_uri,
        output_format=output_format,
        s3_client=s3_client_for(source, model_uri, endpoint_url),
        label_port=port,
    )
