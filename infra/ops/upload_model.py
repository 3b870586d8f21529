"""`camsort upload-model`: put a checked model directory in the bucket and print the deploy pin."""

from __future__ import annotations

import json
from pathlib import Path

from infra.deploy.deploy_file import DEFAULT_MODEL, model_prefix
from infra.deploy.model_upload import ModelUpload, upload_model_dir


def upload_model_command(
    model_dir: Path,
    *,
    bucket: str,
    version: str,
    endpoint_url: str | None,
    region: str | None,
    model_name: str = DEFAULT_MODEL,
) -> ModelUpload:
    """`camsort upload-model`: upload to ``s3://bucket/models/<version>/`` (a named model's:
    ``models/<name>/<version>/``) and print how the deployment pins it."""
    import boto3
    from rich.console import Console

    from infra.deploy.topology import StackNames

    if endpoint_url:  # a local moto server: its admin credentials
        from infra.local.stack import DEFAULT_REGION, local_client

        client = local_client("s3", endpoint_url, region or DEFAULT_REGION)
    else:
        client = boto3.session.Session(region_name=region).client("s3")
    prefix = model_prefix(StackNames().models_prefix, model_name, version)
    upload = upload_model_dir(client, model_dir, bucket, prefix)
    console = Console()
    console.print(
        f"uploaded {model_dir} -> {upload.uri} (model {model_name}, version {upload.model_version})"
    )
    console.print(f"model.onnx sha256 {upload.sha256}")
    if model_name == DEFAULT_MODEL:
        console.print("deploy pinned to it with:")
        console.print(
            f"  npx serverless deploy --stage <stage> {upload.deploy_params(version)}", soft_wrap=True
        )
    else:
        console.print(
            'pin it in deploy/<stage>.json under "models" (then npx serverless deploy --stage <stage>):',
            soft_wrap=True,
        )
        console.print(
            f"  {json.dumps(upload.named_entry(model_name, version))}", soft_wrap=True, markup=False
        )
        console.print(
            f"or let the stage's deploy file pin it: camsort candidate MODEL_DIR --model {model_name} "
            f"--live-uri {upload.uri}",
            soft_wrap=True,
        )
    return upload
