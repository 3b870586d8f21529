"""Upload a model artifact and hand back the sha256 the deployment pins.

Anyone who can write ``models/`` can replace model.onnx *and* its manifest, so the manifest
cannot vouch for the model. The pin comes from the upload step instead: the sha256 of the
model.onnx that was checked here and uploaded, passed to the deployment
(``--param="modelSha256=..."`` -> CAMSORT_MODEL_SHA256); the function refuses any other model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError

from functions.errors import StorageError
from functions.frames.manifest import MANIFEST_FILENAME, MODEL_FILENAME, load_verified


@dataclass(frozen=True)
class ModelUpload:
    uri: str  # s3://bucket/models/<version>/
    sha256: str  # of model.onnx: the deployment's pin
    model_version: str  # from the manifest

    def deploy_params(self, version: str) -> str:
        return f'--param="modelVersion={version}" --param="modelSha256={self.sha256}"'

    def named_entry(self, name: str, version: str) -> dict[str, dict[str, str]]:
        """A named model's pins as deploy/<stage>.json's ``models`` holds them."""
        return {name: {"modelVersion": version, "modelUri": self.uri, "modelSha256": self.sha256}}


def upload_model_dir(s3_client: Any, model_dir: Path, bucket: str, prefix: str) -> ModelUpload:
    """Check ``model_dir`` (model.onnx against its manifest), upload both under ``prefix``."""
    model_dir = Path(model_dir)
    _, manifest = load_verified(model_dir)  # never upload (or pin) a model that fails its own check
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    # The manifest last: a reader that sees it sees the model it describes.
    for name in (MODEL_FILENAME, MANIFEST_FILENAME):
        try:
            s3_client.upload_file(str(model_dir / name), bucket, prefix + name)
        except (S3UploadFailedError, ClientError) as exc:
            # upload_file wraps the PutObject error (NoSuchBucket, AccessDenied) in its own type.
            raise StorageError(
                f"s3://{bucket}/{prefix}{name}: upload failed ({exc.__cause__ or exc}); check --bucket "
                "(the stage's frames or model bucket) and that these credentials may write it"
            ) from exc
    return ModelUpload(
        uri=f"s3://{bucket}/{prefix}", sha256=manifest.model_sha256, model_version=manifest.model_version
    )
