"""`camsort classify FILES... --model DIR`: run a model on your own frames (files or s3:// keys)."""

from __future__ import annotations

import click


@click.command("classify")
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--model",
    "model_uri",
    required=True,
    help="Model directory (or s3://bucket/prefix/) holding model.onnx + manifest.json.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of answers instead of a table.")
@click.option(
    "--csv", "as_csv", is_flag=True, help="Print CSV: one row per image, one probability column per label."
)
@click.option(
    "--endpoint-url", default=None, help="S3 endpoint for s3:// sources or model (e.g. a local moto server)."
)
def classify(
    sources: tuple[str, ...], model_uri: str, as_json: bool, as_csv: bool, endpoint_url: str | None
) -> None:
    """Classify SOURCES (image files, s3://bucket/key, or s3://bucket/prefix/ for every image under it)
    with the function's own loader, model session and decision rule."""
    from rich.console import Console

    from infra.ops.classify_files import classify_files, render

    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    answers, manifest = classify_files(list(sources), model_uri, endpoint_url=endpoint_url)
    render(answers, manifest, "json" if as_json else "csv" if as_csv else "table", Console())
