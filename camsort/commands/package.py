"""`camsort package`: build the Lambda artifact that serverless.yml deploys."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("package")
@click.option(
    "--arch",
    "architecture",
    type=click.Choice(["arm64", "x86_64"]),
    default="arm64",
    show_default=True,
    help="Lambda architecture; must match provider.architecture in serverless.yml.",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where lambda-<arch>.zip and its .json report go [default: build/ in the project].",
)
@click.option(
    "--runtime-boto",
    is_flag=True,
    help="Leave boto3/botocore out and use the (unpinned) copies of the Lambda runtime.",
)
@click.option(
    "--embed-model",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Put this model directory (model.onnx + manifest.json) into the zip under model/ "
    "instead of loading it from S3; then deploy with --param='modelUri=/var/task/model/'.",
)
def package(architecture: str, out_dir: Path | None, runtime_boto: bool, embed_model: Path | None) -> None:
    """Build build/lambda-<arch>.zip: pinned Lambda wheels + functions/, zipped deterministically."""
    from rich.console import Console
    from rich.table import Table

    from infra.deploy.package import PROJECT_ROOT, build_lambda_package

    console = Console()
    with console.status(f"building the {architecture} Lambda package (pip, prune, zip)"):
        report = build_lambda_package(
            architecture=architecture,
            out_dir=out_dir or PROJECT_ROOT / "build",
            include_boto=not runtime_boto,
            embed_model=embed_model,
        )

    table = Table(title=f"{report.artifact} ({report.architecture})")
    table.add_column("top-level item")
    table.add_column("files", justify="right")
    table.add_column("unzipped MB", justify="right")
    table.add_column("zipped MB", justify="right")
    for entry in report.entries:
        table.add_row(entry.name, str(entry.files), _mb(entry.unzipped_bytes), _mb(entry.zipped_bytes))
    table.add_section()
    table.add_row(
        "total (zip file)",
        str(sum(e.files for e in report.entries)),
        _mb(report.unzipped_bytes),
        _mb(report.zipped_bytes),
    )
    console.print(table)
    console.print(f"sha256 {report.sha256}")
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")
    # What the deployment will cost per million frames, as the last `make bench` measured it.
    from bench.perf.markdown import bill_summary

    console.print(bill_summary(PROJECT_ROOT / "bench" / "perf.json"), markup=False, soft_wrap=True)


def _mb(size: int) -> str:
    return f"{size / 1024 / 1024:.2f}"
