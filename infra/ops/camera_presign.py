"""Presigned uploads for a camera that cannot sign requests itself.

A small service holding the camera's credentials (``camsort camera add ID --out FILE``) hands
the camera a presigned PUT URL or a presigned POST form; the camera uploads with plain HTTP
(curl). Both are signed with the camera's *own* key, so they grant no more than the camera's
IAM policy (s3:PutObject under ``<frames prefix><ID>/``), and they expire:

* :func:`presigned_put`: one URL for one key (``<frames prefix><ID>/<capture time>.jpg|.png``
  unless a name is given) with its Content-Type signed (another type is refused). A PUT URL
  cannot bound the upload's size: the function's byte limit rejects a larger frame afterwards.
* :func:`presigned_post`: a form for any key under the camera's prefix (``${filename}``: the
  file's name), whose policy bounds the size to 1..max_bytes (the configured byte limit) and
  fixes the Content-Type; S3 (and locally infra/local/presigned_gateway.py) refuses anything else.

``camsort camera presign ID --credentials FILE [--post]`` prints either (:func:`presign_command`).
docs/presigned-uploads.md describes the setup and what the local system checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from functions.env import DEFAULT_MAX_BYTES
from functions.frames.keys import frame_key
from infra.ops.cameras import CameraCredentials, CameraError, camera_prefix, camera_user, validate_camera_id

# The frame types the function accepts, and the key suffix each gets.
CONTENT_TYPES = {"image/jpeg": ".jpg", "image/png": ".png"}
DEFAULT_EXPIRES_S = 300
SIGNATURE_VERSIONS = ("s3v4", "s3")  # SigV4, and SigV2 for old camera firmware and old buckets
MAX_EXPIRES_S = 7 * 24 * 3600


@dataclass(frozen=True)
class PresignedPut:
    url: str
    key: str
    headers: dict[str, str]  # the camera must send these as they are (they are signed)
    expires_s: int


@dataclass(frozen=True)
class CameraUploadTarget:
    """Where a camera's frames go: its credentials, bucket and frames prefix."""

    credentials: CameraCredentials
    bucket: str
    frames_prefix: str


def _check(content_type: str, expires_s: int, signature_version: str) -> None:
    if content_type not in CONTENT_TYPES:
        raise CameraError(f"content type {content_type!r}: use one of {', '.join(CONTENT_TYPES)}")
    if not 1 <= expires_s <= MAX_EXPIRES_S:
        raise CameraError(f"expiry {expires_s} s: use 1..{MAX_EXPIRES_S} seconds (S3's limit is 7 days)")
    if signature_version not in SIGNATURE_VERSIONS:
        raise CameraError(
            f"signature version {signature_version!r}: use one of {', '.join(SIGNATURE_VERSIONS)}"
        )


def _s3_client(
    credentials: CameraCredentials, region: str | None, endpoint_url: str | None, signature_version: str
):
    from botocore.config import Config

    return credentials.session(region).client(
        "s3", endpoint_url=endpoint_url, config=Config(signature_version=signature_version)
    )


def presigned_put(
    target: CameraUploadTarget,
    *,
    region: str | None,
    endpoint_url: str | None = None,
    content_type: str = "image/jpeg",
    expires_s: int = DEFAULT_EXPIRES_S,
    name: str | None = None,
    signature_version: str = "s3v4",
    now: datetime | None = None,
) -> PresignedPut:
    """A PUT URL for one frame of the camera: ``name`` under its prefix, else its capture time."""
    _check(content_type, expires_s, signature_version)
    camera_id = target.credentials.camera_id
    if name is None:
        key = frame_key(
            target.frames_prefix, camera_id, now or datetime.now(UTC), CONTENT_TYPES[content_type]
        )
    elif not name or "/" in name:
        raise CameraError(f"frame name {name!r}: give a file name without '/', e.g. 20261122T073900123Z.jpg")
    else:
        key = camera_prefix(target.frames_prefix, camera_id) + name
    s3 = _s3_client(target.credentials, region, endpoint_url, signature_version)
    url = s3.generate_presigned_url(
        "put_object",
        Params={"Bucket": target.bucket, "Key": key, "ContentType": content_type},
        ExpiresIn=expires_s,
    )
    return PresignedPut(url=url, key=key, headers={"Content-Type": content_type}, expires_s=expires_s)


def presigned_post(
    target: CameraUploadTarget,
    *,
    region: str | None,
    endpoint_url: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    content_type: str = "image/jpeg",
    expires_s: int = DEFAULT_EXPIRES_S,
    signature_version: str = "s3v4",
) -> dict[str, Any]:
    """A POST form (``{"url", "fields"}``) for frames under the camera's prefix.

    Conditions: the bucket, the key starts with the camera's prefix (the form's key is
    ``<prefix>${filename}``), the size is 1..max_bytes, the Content-Type is exactly
    ``content_type``.
    """
    _check(content_type, expires_s, signature_version)
    if max_bytes < 1:
        raise CameraError(f"max bytes {max_bytes}: use a positive byte limit (CAMSORT_MAX_BYTES)")
    prefix = camera_prefix(target.frames_prefix, target.credentials.camera_id)
    s3 = _s3_client(target.credentials, region, endpoint_url, signature_version)
    return s3.generate_presigned_post(
        Bucket=target.bucket,
        Key=prefix + "${filename}",
        Fields={"Content-Type": content_type},
        Conditions=[
            ["starts-with", "$key", prefix],
            ["content-length-range", 1, max_bytes],
            {"Content-Type": content_type},
        ],
        ExpiresIn=expires_s,
    )


def read_upload_target(path: Path, camera_id: str) -> CameraUploadTarget:
    """The camera's credentials file written by ``camsort camera add ID --out FILE``."""
    validate_camera_id(camera_id)
    try:
        document = json.loads(Path(path).read_text())
        stored_id = document["camera_id"]
        bucket, prefix = document["bucket"], document["prefix"]
        key_id, secret = document["aws_access_key_id"], document["aws_secret_access_key"]
    except FileNotFoundError:
        raise CameraError(
            f"{path}: no such file; write it with `camsort camera add {camera_id} --out {path}`"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CameraError(
            f"{path}: not a camera credentials file ({type(error).__name__}: {error}); "
            f"write one with `camsort camera add {camera_id} --out FILE`"
        ) from None
    if stored_id != camera_id:
        raise CameraError(f"{path} holds the credentials of camera {stored_id}, not {camera_id}")
    suffix = f"{camera_id}/"
    if not prefix.endswith(suffix):
        raise CameraError(f"{path}: prefix {prefix!r} does not end with the camera's id {suffix!r}")
    credentials = CameraCredentials(camera_id, camera_user(bucket, camera_id), key_id, secret)
    return CameraUploadTarget(credentials, bucket, prefix[: -len(suffix)])


def presign_command(
    camera_id: str,
    *,
    credentials_path: Path,
    post: bool,
    expires_s: int,
    content_type: str,
    max_bytes: int | None,
    name: str | None,
    signature_version: str,
    endpoint_url: str | None,
    region: str | None,
) -> PresignedPut | dict[str, Any]:
    """Print a presigned PUT URL (stdout, alone, for a shell) or a POST form as JSON."""
    import click

    from functions.settings import max_bytes_setting
    from infra.local.stack import DEFAULT_REGION

    max_bytes = max_bytes if max_bytes is not None else max_bytes_setting()
    target = read_upload_target(credentials_path, camera_id)
    region = region or (DEFAULT_REGION if endpoint_url else None)
    if post:
        form = presigned_post(
            target,
            region=region,
            endpoint_url=endpoint_url,
            max_bytes=max_bytes,
            content_type=content_type,
            expires_s=expires_s,
            signature_version=signature_version,
        )
        click.echo(json.dumps(form, indent=2))
        click.echo(
            f"POST it as multipart/form-data with these fields and the frame last as 'file' "
            f"(1..{max_bytes} bytes, {content_type}); valid {expires_s} s",
            err=True,
        )
        return form
    put = presigned_put(
        target,
        region=region,
        endpoint_url=endpoint_url,
        content_type=content_type,
        expires_s=expires_s,
        name=name,
        signature_version=signature_version,
    )
    click.echo(put.url)
    click.echo(
        f"PUT the frame with header 'Content-Type: {content_type}' to {put.key}; valid {expires_s} s",
        err=True,
    )
    return put
