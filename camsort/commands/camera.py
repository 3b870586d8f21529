"""`camsort camera add ID | list | remove ID | presign ID`: least-privilege upload credentials per camera;
`camsort camera regions set | show | preview`: its regions."""

from __future__ import annotations

from pathlib import Path

import click

_bucket = click.option("--bucket", required=True, help="The frames bucket (serverless.yml's bucketName).")
_prefix = click.option("--frames-prefix", default="frames/", show_default=True, help="The frames prefix.")
_endpoint = click.option("--endpoint-url", default=None, help="A local endpoint (moto); default: AWS.")
_region = click.option("--region", default=None, help="AWS region (default: from the environment).")


@click.group("camera")
def camera() -> None:
    """Camera credentials: each camera may only s3:PutObject under <frames prefix><ID>/."""


@camera.command("add")
@click.argument("camera_id")
@_bucket
@_prefix
@_endpoint
@_region
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the credentials to this JSON file (mode 0600) instead of printing them.",
)
def add(
    camera_id: str, bucket: str, frames_prefix: str, endpoint_url: str | None, region: str | None, out
) -> None:
    """Create CAMERA_ID's IAM user, policy and access key (the secret is shown once)."""
    from infra.ops.cameras import add_camera_command

    add_camera_command(
        camera_id,
        bucket=bucket,
        frames_prefix=frames_prefix,
        endpoint_url=endpoint_url,
        region=region,
        out=out,
    )


@camera.command("list")
@_bucket
@_prefix
@_endpoint
@_region
def list_(bucket: str, frames_prefix: str, endpoint_url: str | None, region: str | None) -> None:
    """The cameras of a bucket, with the prefix each may write."""
    from infra.ops.cameras import list_cameras_command

    list_cameras_command(bucket=bucket, frames_prefix=frames_prefix, endpoint_url=endpoint_url, region=region)


@camera.command("remove")
@click.argument("camera_id")
@_bucket
@_endpoint
@_region
def remove(camera_id: str, bucket: str, endpoint_url: str | None, region: str | None) -> None:
    """Delete CAMERA_ID's keys, policy and user."""
    from infra.ops.cameras import remove_camera_command

    remove_camera_command(camera_id, bucket=bucket, endpoint_url=endpoint_url, region=region)


@camera.command("presign")
@click.argument("camera_id")
@click.option(
    "--credentials",
    "credentials_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The camera's credentials file (written by `camsort camera add ID --out FILE`).",
)
@click.option("--post", is_flag=True, help="A POST form (JSON) instead of a PUT URL.")
@click.option("--expires", "expires_s", default=300, show_default=True, type=int, help="Validity in seconds.")
@click.option(
    "--content-type",
    default="image/jpeg",
    show_default=True,
    type=click.Choice(["image/jpeg", "image/png"]),
    help="The frame's type (signed: the upload must send it).",
)
@click.option(
    "--max-bytes",
    default=None,
    type=int,
    help="POST: the largest upload (content-length-range); default: CAMSORT_MAX_BYTES or 20 MiB.",
)
@click.option(
    "--name", default=None, help="PUT: the frame's file name under the prefix; default: its capture time."
)
@click.option(
    "--signature-version",
    default="s3v4",
    show_default=True,
    type=click.Choice(["s3v4", "s3"]),
    help="SigV4, or SigV2 (s3) for old camera firmware.",
)
@_endpoint
@_region
def presign(
    camera_id: str,
    credentials_path: Path,
    post: bool,
    expires_s: int,
    content_type: str,
    max_bytes: int | None,
    name: str | None,
    signature_version: str,
    endpoint_url: str | None,
    region: str | None,
) -> None:
    """Print a presigned PUT URL (or, with --post, a POST form) for CAMERA_ID's next frame."""
    from infra.ops.camera_presign import presign_command

    presign_command(
        camera_id,
        credentials_path=credentials_path,
        post=post,
        expires_s=expires_s,
        content_type=content_type,
        max_bytes=max_bytes,
        name=name,
        signature_version=signature_version,
        endpoint_url=endpoint_url,
        region=region,
    )


@camera.group("regions")
def regions() -> None:
    """A camera's regions: named boxes of its view, each answered by a named model (docs/regions.md)."""


_regions_target = [
    click.option("--stage", default=None, help="The stage; default: the running demo's."),
    click.option("--bucket", default=None, help="The model bucket; default: the stage's bucket."),
    click.option("--table", default=None, help="The stage's results table; default: the running demo's."),
    click.option(
        "--endpoint-url", default=None, help="A local endpoint (moto); default: the running demo's, else AWS."
    ),
    _region,
]


def _target_options(command):
    for option in reversed(_regions_target):
        command = option(command)
    return command


def _target(endpoint_url, table, bucket, region, stage):
    from infra.ops.camera_regions import resolve_regions_target

    return resolve_regions_target(endpoint_url, table, bucket, region, stage)


@regions.command("set")
@click.argument("camera_id")
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The regions (JSON).",
)
@click.option(
    "--models",
    default=None,
    help="The deployment's named models, comma-separated; default: deploy/<stage>.json's models (default always).",
)
@click.option(
    "--deploy-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where <stage>.json lives; default: the demo's state dir locally, the project's deploy/ on AWS.",
)
@_target_options
def set_(camera_id, path, models, deploy_dir, stage, bucket, table, endpoint_url, region) -> None:
    """Validate FILE and make it CAMERA_ID's regions (running functions pick it up within one TTL)."""
    from infra.ops.camera_regions import set_regions_for

    set_regions_for(camera_id, path, _target(endpoint_url, table, bucket, region, stage), deploy_dir, models)


@regions.command("show")
@click.argument("camera_id")
@click.option("--json", "as_json", is_flag=True, help="Print the stored JSON.")
@_target_options
def show(camera_id, as_json, stage, bucket, table, endpoint_url, region) -> None:
    """CAMERA_ID's regions as stored."""
    from infra.ops.camera_regions import show_regions_command

    show_regions_command(camera_id, _target(endpoint_url, table, bucket, region, stage), as_json=as_json)


@regions.command("preview")
@click.argument("camera_id")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The PNG; default: CAMERA_ID-regions.png.",
)
@_target_options
def preview(camera_id, out, stage, bucket, table, endpoint_url, region) -> None:
    """Draw CAMERA_ID's regions and names on its latest frame into a PNG."""
    from infra.ops.camera_regions import preview_regions_command

    preview_regions_command(camera_id, _target(endpoint_url, table, bucket, region, stage), out)
