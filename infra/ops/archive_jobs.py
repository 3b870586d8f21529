"""Compaction and the results export, run locally (under their derived roles) or on AWS.

Locally: :func:`compact_locally` creates the compact function's role on the moto server from
the code's declarations (infra/deploy/policy.py ``compaction_permissions``), assumes it and runs the
very code the Lambda function runs (functions/compact_handler.compact_bucket), so a call the
role lacks is refused here as on AWS. :func:`export_results_locally` does the same for the
results export, fed by the local stream pump (infra/local/results_stream.py).

On AWS: :func:`compact_on_aws` invokes the deployed ``compact`` function (after a featurize job,
or by hand); the schedule and the stream need nothing from here.
"""

from __future__ import annotations

import json
from typing import Any

from functions.iam import requires
from infra.deploy import policy
from infra.deploy.topology import StackNames
from infra.local.stack import DEFAULT_REGION, LocalStack, local_client


def _stack(endpoint_url: str, region: str, bucket: str, table: str | None = None) -> LocalStack:
    names = StackNames(bucket=bucket, table=table or StackNames().table)
    return LocalStack(endpoint_url, region, names, "", "", "", "", 900, 5400)


def role_session(stack: LocalStack, name: str, permissions: dict[str, tuple[str, ...]], **params: str) -> Any:
    """A boto3 session with the credentials of a local role granting exactly ``permissions``."""
    import boto3

    from infra.local.iam import assume, create_function_role, stack_account_id

    account_id = stack_account_id(stack)
    target = policy.local_target(
        stack.names,
        model_uri=f"s3://{stack.names.bucket}/{stack.names.models_prefix}",
        region=stack.region,
        account_id=account_id,
    )
    target = policy.Target(params={**target.params, **params}, tables=target.tables)
    role = create_function_role(stack, policy.statements(permissions, target), name=f"camsort-{name}"[:64])
    credentials = assume(stack, role, session_name=f"camsort-{name}")
    return boto3.session.Session(
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials["AWS_SESSION_TOKEN"],
        region_name=stack.region,
    )


def compact_locally(
    endpoint_url: str,
    bucket: str,
    backbone_sha256: str | None = None,
    *,
    region: str = DEFAULT_REGION,
    max_pointers: int | None = None,
) -> dict[str, Any]:
    from functions.archive.compaction import FeatureArchive
    from functions.compact_handler import compact_bucket

    stack = _stack(endpoint_url, region, bucket)
    s3 = role_session(stack, "compact", policy.compaction_permissions()).client(
        "s3", endpoint_url=endpoint_url
    )
    limit = {} if max_pointers is None else {"max_pointers": max_pointers}
    return compact_bucket(FeatureArchive(s3), bucket, backbone_sha256, **limit)


def export_results_locally(
    endpoint_url: str, bucket: str, table: str, *, region: str = DEFAULT_REGION
) -> dict[str, Any]:
    """The results table's stream -> Parquet under archive/results/, as the exportResults function."""
    from functions.archive.results_export import ResultsArchive, export_batch
    from infra.local.results_stream import pump_results_stream, results_export_permissions, results_stream_arn

    stack = _stack(endpoint_url, region, bucket, table)
    # The role's stream grant names the stream: found first as the local admin.
    stream_arn = results_stream_arn(local_client("dynamodbstreams", endpoint_url, region), table)
    permissions = results_export_permissions()
    session = role_session(stack, "export-results", permissions, results_stream=stream_arn)
    s3 = session.client("s3", endpoint_url=endpoint_url)
    streams = session.client("dynamodbstreams", endpoint_url=endpoint_url)
    results_stream_arn(streams, table)  # as the event source mapping does, under the role
    archive = ResultsArchive(s3, bucket)
    files: list[str] = []
    rows = 0

    def invoke(event: dict[str, Any]) -> None:
        nonlocal rows
        written = export_batch(archive, event["Records"])
        files.extend(written["files"])
        rows += written["rows"]

    records = pump_results_stream(streams, stream_arn, invoke, region=region)
    return {"records": records, "rows": rows, "files": files}


@requires("lambda:InvokeFunction", resource="compact-function")
def compact_on_aws(
    lambda_client: Any, function_name: str, backbone_sha256: str | None = None
) -> dict[str, Any]:
    """Invoke the deployed compact function and return its report."""
    payload = {"backboneSha256": backbone_sha256} if backbone_sha256 else {}
    response = lambda_client.invoke(FunctionName=function_name, Payload=json.dumps(payload).encode())
    body = json.loads(response["Payload"].read() or b"{}")
    if response.get("FunctionError"):
        from functions.errors import ConfigurationError

        raise ConfigurationError(f"{function_name}: the compaction failed: {body.get('errorMessage', body)}")
    return body


def run_compaction(
    bucket: str,
    backbone_sha256: str | None,
    *,
    endpoint_url: str | None,
    region: str | None,
    function_name: str | None,
) -> dict[str, Any]:
    """`camsort compact`: locally with --endpoint-url, else the deployed function."""
    if endpoint_url:
        return compact_locally(endpoint_url, bucket, backbone_sha256, region=region or DEFAULT_REGION)
    if not function_name:
        from functions.errors import ConfigurationError

        raise ConfigurationError("on AWS, name the deployed function: --function camsort-<stage>-compact")
    import boto3

    return compact_on_aws(boto3.client("lambda", region_name=region), function_name, backbone_sha256)
