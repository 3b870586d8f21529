"""Camera credentials under moto's IAM enforcement: a camera may only put its own frames.

The local stack turns moto's IAM checks on (infra/local/stack.py), so every refusal below is
moto evaluating the camera's policy, as IAM would. Presigned PUT URLs and POST forms, and their
refusals, are tested with curl in tests/e2e/test_presigned_uploads.py; here, the policy
document a camera's POST form carries.
"""

from __future__ import annotations

import base64
import json
import os

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from camsort.cli import main as camsort_main
from infra.demo.accounting import scan_results
from infra.demo.simulator import simulate_cameras
from infra.ops.camera_presign import CameraUploadTarget, presigned_post
from infra.ops.cameras import CameraError, add_camera, camera_policy, list_cameras, remove_camera

pytestmark = pytest.mark.e2e


def _code(call) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"]


@pytest.fixture
def camera(local_stack):
    names = local_stack.names
    credentials = add_camera(
        local_stack.client("iam"), bucket=names.bucket, frames_prefix=names.frames_prefix, camera_id="cam-01"
    )
    return credentials, credentials.session(local_stack.region).client(
        "s3", endpoint_url=local_stack.endpoint_url
    )


def test_a_camera_may_only_put_under_its_own_prefix(local_stack, camera):
    _, s3 = camera
    bucket, prefix = local_stack.names.bucket, local_stack.names.frames_prefix
    own = f"{prefix}cam-01/20261122T073900123Z.jpg"
    s3.put_object(Bucket=bucket, Key=own, Body=b"jpeg bytes", ContentType="image/jpeg")
    assert local_stack.client("s3").get_object(Bucket=bucket, Key=own)["Body"].read() == b"jpeg bytes"

    refused = {
        "another camera's prefix": lambda: s3.put_object(
            Bucket=bucket, Key=f"{prefix}cam-02/x.jpg", Body=b"x"
        ),
        "a prefix that only starts like its own": lambda: s3.put_object(
            Bucket=bucket, Key=f"{prefix}cam-010/x.jpg", Body=b"x"
        ),
        "models/": lambda: s3.put_object(Bucket=bucket, Key="models/v1/model.onnx", Body=b"x"),
        "reading its own frame": lambda: s3.get_object(Bucket=bucket, Key=own),
        "listing frames": lambda: s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}cam-01/"),
        "tagging its own frame": lambda: s3.put_object_tagging(
            Bucket=bucket, Key=own, Tagging={"TagSet": [{"Key": "camsort-label", "Value": "bus"}]}
        ),
        "reading tags": lambda: s3.get_object_tagging(Bucket=bucket, Key=own),
        "deleting its own frame": lambda: s3.delete_object(Bucket=bucket, Key=own),
    }
    codes = {what: _code(call) for what, call in refused.items()}
    assert codes == dict.fromkeys(refused, "AccessDenied")


def test_the_policy_names_exactly_one_action_and_prefix():
    assert camera_policy("b", "frames/", "cam-7")["Statement"] == [
        {
            "Sid": "PutOwnFrames",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": ["arn:aws:s3:::b/frames/cam-7/*"],
        }
    ]
    for bad in ("", "a/b", "../x", "-x", "x" * 49, "cam 1"):
        with pytest.raises(CameraError):
            camera_policy("b", "frames/", bad)


def test_list_and_remove(local_stack, camera):
    credentials, s3 = camera
    iam, names = local_stack.client("iam"), local_stack.names
    (listed,) = list_cameras(iam, bucket=names.bucket, frames_prefix=names.frames_prefix)
    assert (listed.camera_id, listed.access_keys) == ("cam-01", 1)
    assert listed.prefix == f"s3://{names.bucket}/{names.frames_prefix}cam-01/"
    with pytest.raises(CameraError, match="already exists"):
        add_camera(iam, bucket=names.bucket, frames_prefix=names.frames_prefix, camera_id="cam-01")

    remove_camera(iam, bucket=names.bucket, camera_id="cam-01")
    assert list_cameras(iam, bucket=names.bucket, frames_prefix=names.frames_prefix) == []
    put = lambda: s3.put_object(Bucket=names.bucket, Key=f"{names.frames_prefix}cam-01/y.jpg", Body=b"x")  # noqa: E731
    assert _code(put) == "InvalidAccessKeyId"  # the key is gone
    with pytest.raises(CameraError, match="no IAM user"):
        remove_camera(iam, bucket=names.bucket, camera_id="cam-01")


def test_the_cli(local_stack, tmp_path):
    names, runner = local_stack.names, CliRunner()
    common = ["--bucket", names.bucket, "--endpoint-url", local_stack.endpoint_url]
    out = tmp_path / "cam-09.json"
    added = runner.invoke(camsort_main, ["camera", "add", "cam-09", *common, "--out", str(out)])
    assert added.exit_code == 0, added.output
    written = json.loads(out.read_text())
    assert written["prefix"] == f"{names.frames_prefix}cam-09/" and written["aws_secret_access_key"]
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    listed = runner.invoke(camsort_main, ["camera", "list", *common])
    assert "cam-09" in listed.output
    again = runner.invoke(camsort_main, ["camera", "add", "cam-09", *common])
    assert again.exit_code != 0 and "already exists" in again.output
    removed = runner.invoke(camsort_main, ["camera", "remove", "cam-09", *common])
    assert removed.exit_code == 0, removed.output
    assert "no cameras" in runner.invoke(camsort_main, ["camera", "list", *common]).output


def test_out_never_writes_a_secret_into_an_existing_file_or_through_a_link(local_stack, tmp_path):
    names, runner = local_stack.names, CliRunner()
    common = ["--bucket", names.bucket, "--endpoint-url", local_stack.endpoint_url]
    existing = tmp_path / "existing.json"
    existing.write_text("someone else's file")
    existing.chmod(0o644)
    target = tmp_path / "elsewhere.json"
    link = tmp_path / "link.json"
    link.symlink_to(target)  # dangling: O_CREAT alone would create elsewhere.json through it
    for path in (existing, link):
        refused = runner.invoke(camsort_main, ["camera", "add", "cam-10", *common, "--out", str(path)])
        assert refused.exit_code != 0
        assert (
            refused.output.strip()
            .splitlines()[-1]
            .endswith(
                "already exists; name a new file for the credentials (an existing one is never overwritten)"
            )
        )
        assert "Traceback" not in refused.output
    assert existing.read_text() == "someone else's file" and oct(existing.stat().st_mode & 0o777) == "0o644"
    assert not target.exists()
    # refused before any IAM change: no camera was created whose secret would be lost
    assert "cam-10" not in runner.invoke(camsort_main, ["camera", "list", *common]).output

    old_umask = os.umask(0)  # a permissive umask does not widen the file
    try:
        fresh = tmp_path / "fresh.json"
        added = runner.invoke(camsort_main, ["camera", "add", "cam-10", *common, "--out", str(fresh)])
    finally:
        os.umask(old_umask)
    assert added.exit_code == 0, added.output
    assert (
        oct(fresh.stat().st_mode & 0o777) == "0o600"
        and json.loads(fresh.read_text())["camera_id"] == "cam-10"
    )


def test_the_simulator_uploads_with_camera_credentials_and_the_frames_are_classified(local_stack, run_worker):
    names, iam = local_stack.names, local_stack.client("iam")
    credentials = {
        camera_id: add_camera(
            iam, bucket=names.bucket, frames_prefix=names.frames_prefix, camera_id=camera_id
        )
        for camera_id in ("cam-01", "cam-02")
    }
    manifest = simulate_cameras(
        local_stack, cameras=2, frames_per_camera=1, seed=3, camera_credentials=credentials
    )
    run_worker()
    assert sorted(item["key"] for item in scan_results(local_stack)) == sorted(
        o.key for o in manifest.objects
    )
    # A camera given another camera's id cannot upload as it.
    with pytest.raises(ClientError, match="AccessDenied"):
        simulate_cameras(
            local_stack, cameras=2, frames_per_camera=1, camera_credentials={"cam-02": credentials["cam-01"]}
        )


def test_presigned_post_policy_for_a_camera_that_cannot_sign(local_stack, camera):
    credentials, _ = camera
    names = local_stack.names
    form = presigned_post(
        CameraUploadTarget(credentials, names.bucket, names.frames_prefix),
        region=local_stack.region,
        endpoint_url=local_stack.endpoint_url,
        max_bytes=5_000_000,
    )
    fields = form["fields"]
    assert fields["key"] == f"{names.frames_prefix}cam-01/${{filename}}"
    assert fields["Content-Type"] == "image/jpeg"
    # Signed with the camera's own key: on AWS the POST can do no more than the camera's policy.
    assert fields["x-amz-credential"].startswith(credentials.access_key_id + "/")
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert ["starts-with", "$key", f"{names.frames_prefix}cam-01/"] in conditions
    assert ["content-length-range", 1, 5_000_000] in conditions
    assert {"Content-Type": "image/jpeg"} in conditions
    assert {"bucket": names.bucket} in conditions
