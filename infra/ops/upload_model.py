"""`camsort upload-model`: put a checked model directory in the bucket and print the deploy pin."""

from __future__ import annotations

from pathlib import Path

from infra.deploy.model_upload import ModelUpload, upload_model_dir


def upload_model_command(
    model_dir: Path, *, bucket: str, version: str, endpoint_url: str | None, region: str | None
) -> ModelUpload:
    """`camsort upload-model`: upload to ``s3://bucket/models/<version>/`` and print the deploy params."""
    import boto3
    from rich.console import Console

    from infra.deploy.topology import StackNames

    if endpoint_url:  # a local moto server: its admin credentials
        from infra.local.stack import DEFAULT_REGION, local_client

        client = local_client("s3", endpoint_url, region or DEFAULT_REGION)
    else:
        client = boto3.session.Session(region_name=region).client("s3")
    upload = upload_model_dir(client, model_dir, bucket, f"{StackNames().models_prefix}{version}/")
    console = Console()
    console.print(f"uploaded {model_dir} -> {upload.uri} (model version {upload.model_version})")
    console.print(f"model.onnx sha256 {upload.sha256}")
    console.print("deploy pinned to it with:")
    console.print(f"  npx serverless deploy --stage <stage> {upload.deploy_params(version)}", soft_wrap=True)
    return upload
