"""Presigned uploads with curl against the project's moto server, IAM enforced, as S3 takes them.

Every URL and form comes from the project's presigners (infra/ops/camera_presign.py), signed with a
camera's own key; curl sends them as a camera would. The moto server checks them in front of
moto (infra/local/presigned_gateway.py) and runs what passes as the camera, so the camera's IAM policy
still applies. Each refusal is asserted by S3's status and error code, and nothing refused
reaches the bucket.
"""

from __future__ import annotations

import base64
import json
import subprocess
import xml.etree.ElementTree as ElementTree
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import botocore.auth
import botocore.signers
import pytest
from botocore.config import Config
from click.testing import CliRunner

from camsort.cli import main as camsort_main
from infra.demo.accounting import scan_results
from infra.ops.camera_presign import CameraUploadTarget, presigned_post, presigned_put
from infra.ops.cameras import add_camera

pytestmark = pytest.mark.e2e

MAX_BYTES = 500_000  # the POST policy's content-length-range; the street frame is below it


@dataclass(frozen=True)
class Answer:
    status: int
    body: str

    @property
    def code(self) -> str | None:
        return ElementTree.fromstring(self.body).findtext("Code") if self.body.strip() else None

    @property
    def message(self) -> str | None:
        return ElementTree.fromstring(self.body).findtext("Message") if self.body.strip() else None


def curl(*args: str) -> Answer:
    """Real curl; loopback never goes through a proxy."""
    done = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "-w", "\n%{http_code}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    body, _, status = done.stdout.rpartition("\n")
    return Answer(int(status), body)


def put(url: str, frame: Path, content_type: str = "image/jpeg") -> Answer:
    return curl("-X", "PUT", "-H", f"Content-Type: {content_type}", "--data-binary", f"@{frame}", url)


def post(form: dict, frame: Path, *, file_name: str = "frame.jpg", **changed: str) -> Answer:
    fields = {**form["fields"], **changed}
    args = [arg for name, value in fields.items() for arg in ("--form-string", f"{name}={value}")]
    return curl(*args, "-F", f"file=@{frame};filename={file_name};type=image/jpeg", form["url"])


@pytest.fixture
def target(local_stack) -> CameraUploadTarget:
    names = local_stack.names
    credentials = add_camera(
        local_stack.client("iam"), bucket=names.bucket, frames_prefix=names.frames_prefix, camera_id="cam-01"
    )
    return CameraUploadTarget(credentials, names.bucket, names.frames_prefix)


@pytest.fixture
def frame(tmp_path, street_jpeg) -> Path:
    path = tmp_path / "frame.jpg"
    path.write_bytes(street_jpeg)
    return path


@pytest.fixture
def presign(local_stack, target):
    def make(kind: str, **options):
        common = {"region": local_stack.region, "endpoint_url": local_stack.endpoint_url}
        if kind == "put":
            return presigned_put(target, **common, **options)
        return presigned_post(target, **common, **{"max_bytes": MAX_BYTES, **options})

    return make


@contextmanager
def signed_earlier(seconds: int):
    """Sign as if ``seconds`` ago: botocore's clock for SigV4, SigV2 and POST policies."""
    past = datetime.now(UTC) - timedelta(seconds=seconds)
    naive = past.replace(tzinfo=None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.auth, "get_current_datetime", lambda: naive)
        patch.setattr(botocore.signers, "get_current_datetime", lambda: naive)
        patch.setattr(botocore.auth, "time", SimpleNamespace(time=past.timestamp))
        yield


def objects(local_stack) -> list[str]:
    names = local_stack.names
    listing = local_stack.client("s3").list_objects_v2(Bucket=names.bucket, Prefix=names.frames_prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_presigned_puts_and_posts_upload_frames_that_get_classified(local_stack, presign, frame, run_worker):
    prefix = f"{local_stack.names.frames_prefix}cam-01/"
    sigv4 = presign("put", name="20261206T070000000Z.jpg")
    sigv2 = presign("put", name="20261206T070001000Z.jpg", signature_version="s3")
    assert "X-Amz-Signature=" in sigv4.url and "Signature=" in sigv2.url and "X-Amz-" not in sigv2.url
    assert (put(sigv4.url, frame).status, put(sigv2.url, frame).status) == (200, 200)
    post_v4 = post(presign("post"), frame, file_name="20261206T070002000Z.jpg")
    post_v2 = post(presign("post", signature_version="s3"), frame, file_name="20261206T070003000Z.jpg")
    assert (post_v4.status, post_v2.status) == (204, 204)

    uploaded = [f"{prefix}20261206T07000{second}000Z.jpg" for second in range(4)]
    assert objects(local_stack) == uploaded
    s3 = local_stack.client("s3")
    head = s3.head_object(Bucket=local_stack.names.bucket, Key=uploaded[2])
    assert (head["ContentType"], head["ContentLength"]) == ("image/jpeg", frame.stat().st_size)

    run_worker()
    results = {item["key"]: item["status"] for item in scan_results(local_stack)}
    assert results == dict.fromkeys(uploaded, "ok")


@pytest.mark.parametrize("signature_version", ["s3v4", "s3"])
def test_refused_put_urls(local_stack, presign, frame, signature_version):
    fresh = presign("put", name="a.jpg", signature_version=signature_version)
    parts = urlsplit(fresh.url)
    other_key = urlunsplit(parts._replace(path=parts.path.replace("/a.jpg", "/b.jpg")))
    signature = "X-Amz-Signature=" if signature_version == "s3v4" else "Signature="
    head, _, tail = fresh.url.partition(signature)
    flipped = head + signature + ("0" if tail[0] != "0" else "1") + tail[1:]
    answers = {
        "another key": put(other_key, frame),
        "another signature": put(flipped, frame),
        "another content type": put(fresh.url, frame, content_type="image/png"),
    }
    with signed_earlier(600):
        old = presign("put", name="c.jpg", expires_s=300, signature_version=signature_version)
    expired = put(old.url, frame)

    assert {what: (a.status, a.code) for what, a in answers.items()} == dict.fromkeys(
        answers, (403, "SignatureDoesNotMatch")
    )
    assert (expired.status, expired.code, expired.message) == (403, "AccessDenied", "Request has expired")
    assert objects(local_stack) == []


def test_a_camera_cannot_presign_outside_its_prefix(local_stack, target, frame):
    """Signed with the camera's own key, a URL or a policy naming another prefix is IAM's to refuse."""
    names = local_stack.names
    s3 = target.credentials.session(local_stack.region).client(
        "s3", endpoint_url=local_stack.endpoint_url, config=Config(signature_version="s3v4")
    )
    url = s3.generate_presigned_url(
        "put_object",
        Params={
            "Bucket": names.bucket,
            "Key": f"{names.frames_prefix}cam-02/x.jpg",
            "ContentType": "image/jpeg",
        },
        ExpiresIn=60,
    )
    form = s3.generate_presigned_post(
        Bucket=names.bucket,
        Key=f"{names.frames_prefix}cam-02/${{filename}}",
        Conditions=[["starts-with", "$key", f"{names.frames_prefix}cam-02/"]],
        ExpiresIn=60,
    )
    refused_put = put(url, frame)
    refused_post = post({"url": form["url"], "fields": form["fields"]}, frame)
    assert (refused_put.status, refused_put.code) == (403, "AccessDenied")
    assert (refused_post.status, refused_post.code) == (403, "AccessDenied")
    assert objects(local_stack) == []


def test_refused_posts(local_stack, presign, frame, tmp_path):
    form = presign("post")
    prefix = f"{local_stack.names.frames_prefix}cam-01/"
    large = tmp_path / "large.jpg"
    large.write_bytes(frame.read_bytes() + b"\0" * (MAX_BYTES - frame.stat().st_size + 1))
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    policy = json.loads(base64.b64decode(form["fields"]["policy"]))
    policy["conditions"] = [
        c for c in policy["conditions"] if not (isinstance(c, list) and c[0] == "content-length-range")
    ]
    widened = base64.b64encode(json.dumps(policy).encode()).decode()

    answers = {
        "too large": post(form, large),
        "empty": post(form, empty),
        "another camera's key": post(form, frame, key=f"{local_stack.names.frames_prefix}cam-02/x.jpg"),
        "a key beside the prefix": post(form, frame, key=f"{local_stack.names.frames_prefix}cam-010/x.jpg"),
        "another content type": post(form, frame, **{"Content-Type": "image/png"}),
        "a field the policy does not name": post(form, frame, acl="public-read"),
        "a policy edited after signing": post(form, frame, policy=widened),
    }
    with signed_earlier(600):
        old = presign("post", expires_s=300)
    expired = post(old, frame)

    summary = {what: (a.status, a.code) for what, a in answers.items()}
    assert summary == {
        "too large": (400, "EntityTooLarge"),
        "empty": (400, "EntityTooSmall"),
        "another camera's key": (403, "AccessDenied"),
        "a key beside the prefix": (403, "AccessDenied"),
        "another content type": (403, "AccessDenied"),
        "a field the policy does not name": (403, "AccessDenied"),
        "a policy edited after signing": (403, "SignatureDoesNotMatch"),
    }
    assert answers["another camera's key"].message == (
        f'Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "{prefix}"]'
    )
    assert answers["another content type"].message == (
        'Invalid according to Policy: Policy Condition failed: ["eq", "$Content-Type", "image/jpeg"]'
    )
    assert (
        answers["a field the policy does not name"].message
        == "Invalid according to Policy: Extra input fields: acl"
    )
    assert ElementTree.fromstring(answers["too large"].body).findtext("MaxSizeAllowed") == str(MAX_BYTES)
    assert (expired.status, expired.code, expired.message) == (
        403,
        "AccessDenied",
        "Invalid according to Policy: Policy expired.",
    )
    assert objects(local_stack) == []


def test_the_cli_presigns_from_a_cameras_credentials_file(local_stack, frame, tmp_path):
    names, runner = local_stack.names, CliRunner()
    endpoint = ["--endpoint-url", local_stack.endpoint_url]
    credentials = tmp_path / "cam-07.json"
    added = runner.invoke(
        camsort_main,
        ["camera", "add", "cam-07", "--bucket", names.bucket, *endpoint, "--out", str(credentials)],
    )
    assert added.exit_code == 0, added.output
    presign = ["camera", "presign", "cam-07", "--credentials", str(credentials), *endpoint]

    url = runner.invoke(camsort_main, [*presign, "--name", "20261206T080000000Z.jpg"])
    assert url.exit_code == 0, url.output
    assert put(url.stdout.strip(), frame).status == 200
    form = runner.invoke(camsort_main, [*presign, "--post", "--max-bytes", str(MAX_BYTES)])
    assert form.exit_code == 0, form.output
    assert post(json.loads(form.stdout), frame, file_name="20261206T080001000Z.jpg").status == 204
    assert objects(local_stack) == [
        f"{names.frames_prefix}cam-07/20261206T08000{second}000Z.jpg" for second in (0, 1)
    ]

    mixed_up = runner.invoke(
        camsort_main, ["camera", "presign", "cam-08", "--credentials", str(credentials), *endpoint]
    )
    assert mixed_up.exit_code != 0
    assert "holds the credentials of camera cam-07, not cam-08" in mixed_up.output
    assert "Traceback" not in mixed_up.output
