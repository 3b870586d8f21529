"""The local system runs under the deployed role, and moto refuses what the role does not allow.

The role comes from serverless.yml packaged by the real Serverless Framework (offline), exactly
as it deploys; the worker gives the handler that role's credentials (infra/local/iam.py). A
copy of serverless.yml missing one action the code declares makes the local system fail the
way AWS would: AccessDenied, the message redelivered, then the DLQ, and no result.

The artifact the template names is a small stand-in zip: ``serverless package`` only copies
and hashes it, and the role does not depend on its content (the real artifact is packaged by
tests/e2e/test_serverless.py).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections import Counter

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.demo.accounting import DeliveryTracker, account, notification_objects, scan_results
from infra.demo.simulator import simulate_cameras
from infra.deploy import policy
from infra.deploy.topology import MAX_RECEIVE_COUNT
from infra.local import iam as local_iam
from infra.local.moto_server import MotoServer
from infra.local.stack import has_local_admin, local_client
from tests.fixtures.deploy import packaged_service

pytestmark = pytest.mark.e2e

REMOVED_ACTION = "s3:PutObjectTagging"


def _stand_in_artifact(directory, name: str = "lambda") -> object:
    path = directory / f"{name}-arm64.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("functions/__init__.py", "")
    return path


@pytest.fixture(scope="module")
def packaged_templates(tmp_path_factory) -> dict[str, object]:
    """{"deployed": template of serverless.yml, "missing": the same without REMOVED_ACTION}."""
    root = tmp_path_factory.mktemp("iam-sls")
    artifact = _stand_in_artifact(root)
    original = (local_iam.PROJECT_ROOT / "serverless.yml").read_text()
    line = re.compile(rf"^[ \t]*- {re.escape(REMOVED_ACTION)}[ \t]*\n", re.MULTILINE)
    assert len(line.findall(original)) == 1, f"serverless.yml should list {REMOVED_ACTION} once"
    templates = {}
    for name, text in (("deployed", original), ("missing", line.sub("", original))):
        _, out_dir = packaged_service(
            root / name, artifact, serverless_yml=text, archive=_stand_in_artifact(root, "archive")
        )
        templates[name] = out_dir / "cloudformation-template-update-stack.json"
    return templates


def _clients(local_stack, credentials: dict[str, str]):
    session = boto3.session.Session(
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials.get("AWS_SESSION_TOKEN"),
        region_name=local_stack.region,
    )
    return lambda service: session.client(service, endpoint_url=local_stack.endpoint_url)


def _code(call) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"]


def test_the_function_role_is_enforced_and_the_admin_is_not_limited(local_stack, stack_model_uri):
    client = _clients(local_stack, local_iam.function_credentials(local_stack, stack_model_uri))
    s3, dynamodb = client("s3"), client("dynamodb")
    names = local_stack.names
    admin = local_stack.client("s3")
    admin.put_object(Bucket=names.bucket, Key=f"{names.frames_prefix}cam-1/a.jpg", Body=b"frame")
    # Allowed: what the code declares, on the frames and the model.
    assert (
        s3.get_object(Bucket=names.bucket, Key=f"{names.frames_prefix}cam-1/a.jpg")["Body"].read() == b"frame"
    )
    model_key = stack_model_uri.split("/", 3)[3] + "manifest.json"
    s3.head_object(Bucket=names.bucket, Key=model_key)
    # Refused: writing or listing frames, reading outside the frames/model objects, DynamoDB
    # actions the code does not declare.
    put = lambda: s3.put_object(Bucket=names.bucket, Key=f"{names.frames_prefix}cam-1/b.jpg", Body=b"x")  # noqa: E731
    assert _code(put) == "AccessDenied"
    assert _code(lambda: s3.list_objects_v2(Bucket=names.bucket)) == "AccessDenied"
    assert _code(lambda: s3.get_object(Bucket=names.bucket, Key=f"{names.models_prefix}other/notes.txt")) == (
        "AccessDenied"
    )
    # moto answers a refused DynamoDB call with IAM's XML 403, which botocore's JSON parser
    # reports as code "403" (AWS: AccessDeniedException); either way not transient.
    assert _code(lambda: dynamodb.scan(TableName=names.table)) in ("AccessDeniedException", "403")
    assert _code(lambda: dynamodb.delete_table(TableName=names.table)) in ("AccessDeniedException", "403")
    dynamodb.get_item(TableName=names.table, Key={"object_id": {"S": "x"}, "object_version": {"S": "y"}})
    # The queue, as Lambda's event source mapping uses it (the worker polls with these keys):
    # receive / delete / attributes, nothing else.
    sqs = client("sqs")
    sqs.get_queue_attributes(QueueUrl=local_stack.queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    sqs.receive_message(QueueUrl=local_stack.queue_url, WaitTimeSeconds=0)
    assert _code(lambda: sqs.send_message(QueueUrl=local_stack.queue_url, MessageBody="{}")) in (
        "AccessDenied",
        "403",
    )
    # A key moto does not know is refused outright: enforcement is on for everyone.
    stranger = _clients(
        local_stack, {"AWS_ACCESS_KEY_ID": "AKIAUNKNOWN000000000", "AWS_SECRET_ACCESS_KEY": "x"}
    )
    assert _code(lambda: stranger("s3").list_buckets()) == "InvalidAccessKeyId"
    # The admin (every fixture's client) is not limited.
    admin.list_objects_v2(Bucket=names.bucket)


def test_the_role_comes_from_the_packaged_template_renamed_to_the_local_stack(
    local_stack, stack_model_uri, packaged_templates
):
    from_template, source = local_iam.function_statements(
        local_stack, stack_model_uri, template=packaged_templates["deployed"]
    )
    assert source == str(packaged_templates["deployed"])
    derived, _ = local_iam.function_statements(local_stack, stack_model_uri, template=None)
    # The packaged role, renamed to the local stack, is the derivation from the code.
    assert policy.grants(from_template) == policy.grants(derived)


def test_an_action_missing_from_serverless_yml_fails_the_local_system(
    local_stack, run_worker, packaged_templates, tmp_path
):
    missing = json.loads(packaged_templates["missing"].read_text())
    granted = {action for action, _ in policy.grants(local_iam.role_statements(missing))}
    assert REMOVED_ACTION not in granted and "s3:GetObject" in granted

    manifest = simulate_cameras(local_stack, cameras=1, frames_per_camera=1, seed=8)
    (uploaded,) = manifest.objects
    tracker = DeliveryTracker()
    failed_deliveries: Counter[str] = Counter()

    def observe(records, failed_ids):
        tracker.observe(records, failed_ids)
        for record in records:
            if record["messageId"] in failed_ids:
                failed_deliveries.update(key for key, _ in notification_objects(record["body"]))

    output = io.StringIO()
    run_worker(
        role_template=packaged_templates["missing"], observer=observe, function_output=output, write_tags=True
    )

    # The tag write (PutObjectTagging) is refused: not transient, so the message fails each
    # time, SQS redelivers it maxReceiveCount times, then moves it to the DLQ. No result.
    assert "AccessDenied" in output.getvalue()
    assert failed_deliveries[uploaded.key] == MAX_RECEIVE_COUNT
    result = account(local_stack, manifest, tracker.snapshot())
    assert result.dead_lettered == [uploaded.key]
    assert result.lost == []
    assert scan_results(local_stack) == []


def test_the_same_frame_is_classified_under_the_unmodified_template(
    local_stack, run_worker, packaged_templates
):
    manifest = simulate_cameras(local_stack, cameras=1, frames_per_camera=1, seed=8)
    run_worker(role_template=packaged_templates["deployed"], write_tags=True)
    items = scan_results(local_stack)
    assert [item["key"] for item in items] == [manifest.objects[0].key]
    tags = local_stack.client("s3").get_object_tagging(
        Bucket=local_stack.names.bucket, Key=manifest.objects[0].key
    )
    assert any(tag["Key"].startswith("camsort-") for tag in tags["TagSet"])


def test_the_local_admin_survives_a_reset_with_enforcement_on(tmp_path):
    with MotoServer(log_path=tmp_path / "moto.log") as server:
        assert has_local_admin(server.endpoint_url)
        server.enforce_iam()
        server.reset()  # moto drops every resource, IAM included; the server seeds the admin again
        assert has_local_admin(server.endpoint_url)
        local_client("s3", server.endpoint_url).create_bucket(Bucket="after-reset")
