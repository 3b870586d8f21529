"""A camera's presigned POST form, accepted by moto in process (no IAM checks, no policy checks).

What this shows: the form's fields (signed with the camera's key) upload a frame, and
``${filename}`` lands under the camera's prefix. The policy's conditions and the signer's IAM
policy are enforced by the project's moto server (infra/local/presigned_gateway.py), tested with curl
in tests/e2e/test_presigned_uploads.py.
"""

from __future__ import annotations

import boto3
import requests
from moto import mock_aws

from infra.ops.camera_presign import CameraUploadTarget, presigned_post
from infra.ops.cameras import add_camera


def test_the_form_uploads_a_frame_under_the_cameras_prefix():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="camsort-frames-post")
        iam = boto3.client("iam", region_name="us-east-1")
        camera = add_camera(iam, bucket="camsort-frames-post", frames_prefix="frames/", camera_id="cam-01")
        form = presigned_post(
            CameraUploadTarget(camera, "camsort-frames-post", "frames/"),
            region="us-east-1",
            max_bytes=1_000_000,
        )
        name = "20261122T073900123Z.jpg"
        response = requests.post(
            form["url"],
            data=form["fields"],
            files={"file": (name, b"\xff\xd8 jpeg bytes", "image/jpeg")},
            timeout=10,
        )
        assert response.status_code == 204, response.text
        stored = s3.get_object(Bucket="camsort-frames-post", Key=f"frames/cam-01/{name}")
        assert stored["Body"].read() == b"\xff\xd8 jpeg bytes"
        assert stored["ContentType"] == "image/jpeg"
