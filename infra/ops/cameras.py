"""Camera credentials with least privilege: one IAM user per camera, s3:PutObject under its prefix.

``camsort camera add ID`` creates the IAM user ``camsort-camera-<ID>-<bucket hash>`` (path
``/camsort-cameras/<bucket>/``: IAM names are per account, and one account can serve several
stacks) with one inline
policy and one access key. The policy allows exactly ``s3:PutObject`` on
``arn:aws:s3:::<bucket>/<frames prefix><ID>/*``: the camera can upload its own frames and
nothing else (not another camera's prefix, not ``models/``, no reads, no listing, no tags,
no deletes). The same calls work on AWS and on moto; moto enforces the policy once IAM
enforcement is on (infra/local/moto_server.py), which tests/e2e/test_cameras.py relies on.

Cameras that cannot sign requests get presigned PUT URLs or POST forms signed with their own key
(infra/ops/camera_presign.py, ``camsort camera presign``); the local moto server checks those as S3
does (infra/local/presigned_gateway.py).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from functions.errors import ConfigurationError

USER_PREFIX = "camsort-camera-"
POLICY_NAME = "put-own-frames"
# Camera ids become one key segment and part of an IAM user name (64 chars max).
_CAMERA_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")


class CameraError(ConfigurationError):
    """A camera id that cannot be used, or a camera that exists / does not exist."""


@dataclass(frozen=True)
class CameraCredentials:
    camera_id: str
    user_name: str
    access_key_id: str
    secret_access_key: str

    def session(self, region: str | None):
        import boto3

        return boto3.session.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=region,
        )


@dataclass(frozen=True)
class CameraInfo:
    camera_id: str
    user_name: str
    prefix: str  # s3://bucket/<frames prefix><id>/
    access_keys: int
    created: str


def validate_camera_id(camera_id: str) -> str:
    if not _CAMERA_ID.match(camera_id):
        raise CameraError(
            f"camera id {camera_id!r}: use 1-48 letters, digits, '.', '_' or '-', starting with a "
            "letter or digit (it becomes one key segment: <frames prefix><id>/...)"
        )
    return camera_id


def camera_path(bucket: str) -> str:
    return f"/camsort-cameras/{bucket}/"


def camera_user(bucket: str, camera_id: str) -> str:
    """``camsort-camera-<id>-<8 hex of the bucket>`` (at most 15 + 48 + 9 = 72 -> 64 chars checked)."""
    import hashlib

    name = f"{USER_PREFIX}{validate_camera_id(camera_id)}-{hashlib.sha256(bucket.encode()).hexdigest()[:8]}"
    if len(name) > 64:
        raise CameraError(
            f"camera id {camera_id!r} is too long for an IAM user name; use at most 40 characters"
        )
    return name


def camera_prefix(frames_prefix: str, camera_id: str) -> str:
    return f"{frames_prefix}{validate_camera_id(camera_id)}/"


def camera_policy(bucket: str, frames_prefix: str, camera_id: str) -> dict[str, Any]:
    """The camera's only permission: PutObject under its own prefix."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PutOwnFrames",
                "Effect": "Allow",
                "Action": ["s3:PutObject"],
                "Resource": [f"arn:aws:s3:::{bucket}/{camera_prefix(frames_prefix, camera_id)}*"],
            }
        ],
    }


def add_camera(iam: Any, *, bucket: str, frames_prefix: str, camera_id: str) -> CameraCredentials:
    """Create the camera's user, policy and access key; the secret is only returned here."""
    user_name = camera_user(bucket, camera_id)
    try:
        iam.create_user(
            UserName=user_name,
            Path=camera_path(bucket),
            Tags=[{"Key": "camsort-camera", "Value": camera_id}, {"Key": "camsort-bucket", "Value": bucket}],
        )
    except iam.exceptions.EntityAlreadyExistsException:
        raise CameraError(
            f"camera {camera_id} already exists (IAM user {user_name}); `camsort camera remove {camera_id}` first "
            "to issue new credentials"
        ) from None
    iam.put_user_policy(
        UserName=user_name,
        PolicyName=POLICY_NAME,
        PolicyDocument=json.dumps(camera_policy(bucket, frames_prefix, camera_id)),
    )
    key = iam.create_access_key(UserName=user_name)["AccessKey"]
    return CameraCredentials(camera_id, user_name, key["AccessKeyId"], key["SecretAccessKey"])


def list_cameras(iam: Any, *, bucket: str, frames_prefix: str) -> list[CameraInfo]:
    cameras = []
    for page in iam.get_paginator("list_users").paginate(PathPrefix=camera_path(bucket)):
        for user in page["Users"]:
            name = user["UserName"]
            if not name.startswith(USER_PREFIX):
                continue
            camera_id = name[len(USER_PREFIX) :].rsplit("-", 1)[0]
            if camera_user(bucket, camera_id) != name:
                continue  # not one of ours for this bucket
            keys = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
            cameras.append(
                CameraInfo(
                    camera_id=camera_id,
                    user_name=name,
                    prefix=f"s3://{bucket}/{frames_prefix}{camera_id}/",
                    access_keys=len(keys),
                    created=user["CreateDate"].isoformat()
                    if hasattr(user["CreateDate"], "isoformat")
                    else str(user["CreateDate"]),
                )
            )
    return sorted(cameras, key=lambda camera: camera.camera_id)


def remove_camera(iam: Any, *, bucket: str, camera_id: str) -> None:
    """Delete the camera's keys, policy and user: its credentials stop working at once."""
    user_name = camera_user(bucket, camera_id)
    try:
        user = iam.get_user(UserName=user_name)["User"]
    except iam.exceptions.NoSuchEntityException:
        raise CameraError(
            f"camera {camera_id}: no IAM user {user_name}; `camsort camera list` shows the cameras"
        ) from None
    if user.get("Path") != camera_path(bucket):
        raise CameraError(
            f"camera {camera_id}: IAM user {user_name} belongs to another bucket ({user.get('Path')})"
        )
    for key in iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=user_name, AccessKeyId=key["AccessKeyId"])
    for policy_name in iam.list_user_policies(UserName=user_name)["PolicyNames"]:
        iam.delete_user_policy(UserName=user_name, PolicyName=policy_name)
    iam.delete_user(UserName=user_name)


# --- the CLI's library side (camsort/commands/camera.py) ---------------------------------------


def _iam(endpoint_url: str | None, region: str | None) -> Any:
    if endpoint_url:  # a local moto server: as its admin
        from infra.local.stack import DEFAULT_REGION, local_client

        return local_client("iam", endpoint_url, region or DEFAULT_REGION)
    import boto3

    return boto3.session.Session(region_name=region).client("iam")


def add_camera_command(
    camera_id: str,
    *,
    bucket: str,
    frames_prefix: str,
    endpoint_url: str | None,
    region: str | None,
    out: Any = None,
) -> CameraCredentials:
    """Create the camera and print (or write to ``out``, mode 0600) its credentials, once.

    ``out`` is created before the camera (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600): an existing
    path or a symlink is refused before any IAM change, and the secret never lands in a file
    that someone else created or can read.
    """
    from rich.console import Console

    handle = open_secret_file(Path(out)) if out is not None else None
    try:
        credentials = add_camera(
            _iam(endpoint_url, region), bucket=bucket, frames_prefix=frames_prefix, camera_id=camera_id
        )
    except BaseException:
        if handle is not None:
            handle.close()
            Path(out).unlink(missing_ok=True)  # ours, empty: nothing was written to it
        raise
    console = Console()
    document = {
        "camera_id": camera_id,
        "bucket": bucket,
        "prefix": camera_prefix(frames_prefix, camera_id),
        "aws_access_key_id": credentials.access_key_id,
        "aws_secret_access_key": credentials.secret_access_key,
    }
    console.print(
        f"camera {camera_id}: IAM user {credentials.user_name}, may only s3:PutObject under "
        f"s3://{bucket}/{camera_prefix(frames_prefix, camera_id)}"
    )
    if handle is not None:
        with handle:
            json.dump(document, handle, indent=2)
        console.print(f"credentials written to {out} (mode 0600); the secret is not shown again")
    else:
        console.print_json(json.dumps(document))
        console.print("keep the secret now: it cannot be read again (remove and add the camera to rotate)")
    return credentials


def open_secret_file(path: Path) -> TextIO:
    """A new file only this user can read: refuses an existing path (or a symlink) in one sentence."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise ConfigurationError(
            f"{path} already exists; name a new file for the credentials (an existing one is never overwritten)"
        ) from None
    except OSError as exc:  # a symlink (ELOOP), a missing folder, no permission
        raise ConfigurationError(f"{path}: cannot create the credentials file ({exc.strerror})") from None
    os.fchmod(descriptor, 0o600)  # whatever the umask left
    return os.fdopen(descriptor, "w")


def list_cameras_command(
    *, bucket: str, frames_prefix: str, endpoint_url: str | None, region: str | None
) -> list[CameraInfo]:
    from rich.console import Console
    from rich.table import Table

    cameras = list_cameras(_iam(endpoint_url, region), bucket=bucket, frames_prefix=frames_prefix)
    table = Table(title=f"cameras of {bucket}")
    for column in ("camera", "IAM user", "may put under", "access keys", "created"):
        table.add_column(column)
    for camera in cameras:
        table.add_row(
            camera.camera_id, camera.user_name, camera.prefix, str(camera.access_keys), camera.created
        )
    Console().print(table if cameras else f"no cameras for {bucket}; add one with `camsort camera add ID`")
    return cameras


def remove_camera_command(
    camera_id: str, *, bucket: str, endpoint_url: str | None, region: str | None
) -> None:
    from rich.console import Console

    remove_camera(_iam(endpoint_url, region), bucket=bucket, camera_id=camera_id)
    Console().print(f"camera {camera_id} removed: its access key no longer works")
