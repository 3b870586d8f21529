"""`camsort upload-model`: upload a model artifact and print the sha256 the deployment pins."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("upload-model")
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--bucket", required=True, help="The frames bucket (serverless.yml's bucketName / modelBucket)."
)
@click.option(
    "--version", "version", default="v1", show_default=True, help="modelVersion: models/<version>/."
)
@click.option(
    "--model",
    "model_name",
    default="default",
    show_default=True,
    help="The named model (e.g. bay): uploaded to models/<model>/<version>/; default: models/<version>/.",
)
@click.option("--endpoint-url", default=None, help="A local endpoint (moto); default: AWS.")
@click.option("--region", default=None, help="AWS region (default: from the environment).")
def upload_model(
    model_dir: Path, bucket: str, version: str, model_name: str, endpoint_url: str | None, region: str | None
) -> None:
    """Check MODEL_DIR (model.onnx against manifest.json), upload both, print the deploy params."""
    from infra.ops.upload_model import upload_model_command

    upload_model_command(
        model_dir,
        bucket=bucket,
        version=version,
        endpoint_url=endpoint_url,
        region=region,
        model_name=model_name,
    )
