"""The function's execution role on the local stack, enforced by moto.

On AWS, Lambda runs the handler with the temporary credentials of the role serverless.yml
declares. Locally the same happens: :func:`function_credentials` creates an IAM role on the
moto server whose inline policy is that role's statements, assumes it (STS), and returns the
credentials the worker puts into the function's environment. With moto's IAM checks on
(:func:`infra.local.moto_server.enforce_iam`), a call the role does not allow is refused locally as
it would be on AWS.

Where the statements come from (:func:`function_statements`):

1. the packaged CloudFormation template, when one is given or when ``serverless package``
   has left ``.serverless/cloudformation-template-update-stack.json`` in the project and it
   is newer than serverless.yml: that file is exactly what deploys. Its ARNs name the
   packaged stage's resources; they are renamed to the local stack's (bucket, model prefix,
   table, queue);
2. otherwise the derivation from the code (:mod:`infra.deploy.policy`), resolved to the local stack.
   tests/e2e/test_serverless.py asserts that the packaged role equals this derivation, so
   the two only differ when serverless.yml was edited without the code (or the reverse),
   and then the test fails.

What moto 5.2.5 checks, said plainly (see its ``moto/iam/access_control.py``):

* the signature and the access key of every request, and the *action* of every request;
* for S3, the resource too (``arn:aws:s3:::bucket/key``), so object-prefix scoping is real.
  Its action names differ from AWS in two places: a HeadObject is checked as s3:GetObject
  even with a VersionId, and GetObjectTagging with a VersionId as s3:GetObjectVersion;
* for DynamoDB it authorizes every request against resource ``"*"``, so a statement naming
  the table ARN would refuse everything. The local role therefore keeps each DynamoDB
  statement's actions but widens its resources to ``"*"``: actions are enforced locally,
  table scoping only in the template (checked by tests/e2e/test_serverless.py);
* EventBridge likewise (resource ``"*"``): events:PutEvents is enforced as an action, the bus
  scoping only in the template;
* SQS's DeleteMessageBatch is checked by moto as ``sqs:DeleteMessageBatch`` (AWS: as
  ``sqs:DeleteMessage``), so the local role gets that name beside ``sqs:DeleteMessage``.

The worker's SQS polling (Lambda's event source mapping) also runs as the role, as on AWS,
where the mapping uses the execution role: ReceiveMessage, DeleteMessage, GetQueueAttributes.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

from infra import PROJECT_ROOT
from infra.deploy import policy
from infra.local.stack import LocalStack

log = logging.getLogger(__name__)

PACKAGED_TEMPLATE = PROJECT_ROOT / ".serverless" / "cloudformation-template-update-stack.json"
SERVERLESS_YML = PROJECT_ROOT / "serverless.yml"
ROLE_LOGICAL_ID = "IamRoleLambdaExecution"
QUEUE_LOGICAL_ID = "FramesQueue"
BUCKET_LOGICAL_ID = "FramesBucket"
# moto authorizes these services' requests against resource "*" (no per-service resource).
_STAR_RESOURCE_SERVICES = ("dynamodb:", "events:")
# AWS checks these batch APIs as the single action (sqs:DeleteMessage); moto as the batch name.
_BATCH_ACTIONS = {"sqs:DeleteMessage": "sqs:DeleteMessageBatch"}


def role_statements(template: dict[str, Any]) -> list[dict[str, Any]]:
    """The execution role's policy statements from a packaged CloudFormation template."""
    try:
        role = template["Resources"][ROLE_LOGICAL_ID]["Properties"]
    except KeyError:
        raise ValueError(
            f"the template has no {ROLE_LOGICAL_ID} role; is it a serverless package output?"
        ) from None
    return [
        statement
        for policy_ in role.get("Policies", [])
        for statement in policy_["PolicyDocument"]["Statement"]
    ]


def localize_template_statements(
    template: dict[str, Any], stack: LocalStack, model_uri: str, account_id: str
) -> list[dict[str, Any]]:
    """The template role's statements with the packaged stage's names replaced by the local stack's.

    CloudWatch Logs statements are dropped (nothing writes CloudWatch locally); intrinsics
    (``Fn::GetAtt`` of a table or the queue, the index ``Fn::Join``) become the local ARNs.
    """
    packaged_bucket = template["Resources"].get(BUCKET_LOGICAL_ID, {}).get("Properties", {}).get("BucketName")
    packaged_model_uri = template.get("Outputs", {}).get("ModelUri", {}).get("Value", "")
    local = policy.local_target(stack.names, model_uri=model_uri, region=stack.region, account_id=account_id)
    renames: list[tuple[str, str]] = []
    if packaged_model_uri.startswith("s3://"):
        renames.append((_object_arn(packaged_model_uri), _object_arn(model_uri)))
    if packaged_bucket:
        renames.append((f"arn:aws:s3:::{packaged_bucket}/", f"arn:aws:s3:::{stack.names.bucket}/"))
    intrinsics = {
        json.dumps({"Fn::GetAtt": [logical_id, "Arn"]}): arn for logical_id, arn in local.tables.items()
    } | {json.dumps({"Fn::GetAtt": [QUEUE_LOGICAL_ID, "Arn"]}): stack.queue_arn}

    def resolve(resource: Any) -> Any:
        if isinstance(resource, str):
            for old, new in renames:
                if resource.startswith(old):
                    return new + resource[len(old) :]
            return resource
        key = json.dumps(resource)
        if key in intrinsics:
            return intrinsics[key]
        join = resource.get("Fn::Join") if isinstance(resource, dict) else None
        if join:
            separator, parts = join
            return separator.join(str(resolve(part)) for part in parts)
        raise ValueError(f"cannot resolve {resource!r} for the local stack; add it to infra/local/iam.py")

    localized = []
    for statement in role_statements(template):
        actions = _as_list(statement["Action"])
        if all(action.startswith("logs:") for action in actions):
            continue
        localized.append({**statement, "Resource": [resolve(r) for r in _as_list(statement["Resource"])]})
    return localized


def derived_statements(stack: LocalStack, model_uri: str, account_id: str) -> list[dict[str, Any]]:
    """The code's declarations resolved to the local stack, plus the SQS consume the Framework adds."""
    permissions = policy.function_permissions()
    if not model_uri.startswith("s3://"):  # a model inside the artifact: no S3 read needed
        permissions.pop(policy.MODEL, None)
        model_uri = f"s3://{stack.names.bucket}/{stack.names.models_prefix}"
    target = policy.local_target(stack.names, model_uri=model_uri, region=stack.region, account_id=account_id)
    statements = policy.statements(permissions, target)
    statements.append(
        {
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            "Resource": [stack.queue_arn],
        }
    )
    return statements


def packaged_template(path: Path | None = None) -> Path | None:
    """The template to run under: ``path``, else a fresh ``.serverless`` one, else None."""
    if path is not None:
        return path
    if PACKAGED_TEMPLATE.is_file() and PACKAGED_TEMPLATE.stat().st_mtime >= SERVERLESS_YML.stat().st_mtime:
        return PACKAGED_TEMPLATE
    return None


def stack_account_id(stack: LocalStack) -> str:
    """The local account: from the queue's ARN, or (a stack known by endpoint and table only,
    as a backfill's) from STS."""
    if stack.queue_arn:
        return stack.queue_arn.split(":")[4]
    return stack.client("sts").get_caller_identity()["Account"]


def function_statements(
    stack: LocalStack, model_uri: str, *, template: Path | None = None
) -> tuple[list[dict[str, Any]], str]:
    """(statements, where they came from) for the local function role; see the module doc."""
    account_id = stack_account_id(stack)
    path = packaged_template(template)
    if path is not None:
        statements = localize_template_statements(json.loads(path.read_text()), stack, model_uri, account_id)
        return statements, str(path)
    return derived_statements(stack, model_uri, account_id), "infra/deploy/policy.py (derived from the code)"


def as_moto_enforces(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same statements, adapted to how moto names and matches things (module doc)."""
    adapted = copy.deepcopy(statements)
    for statement in adapted:
        actions = _as_list(statement["Action"])
        if all(action.startswith(_STAR_RESOURCE_SERVICES) for action in actions):
            statement["Resource"] = "*"
        # AWS authorizes a batch call by its single action; moto by the API's own name.
        statement["Action"] = actions + [
            batch for single, batch in _BATCH_ACTIONS.items() if single in actions and batch not in actions
        ]
    return adapted


def role_name(stack: LocalStack) -> str:
    return f"{stack.names.table.replace('camsort-results-', 'camsort-')}-function"[:64]


def create_function_role(
    stack: LocalStack, statements: list[dict[str, Any]], *, name: str | None = None
) -> str:
    """The function's role (created, or its policy replaced); returns its ARN."""
    from infra.local.moto_server import ADMIN_USER

    iam = stack.client("iam")
    name = name or role_name(stack)
    account_id = stack_account_id(stack)
    # Deployed, Lambda assumes this role (Principal Service lambda.amazonaws.com); locally the
    # admin user plays Lambda's part. (moto 5.2.5 fails on a Service principal in a trust
    # policy it evaluates, so the local trust names only the admin.)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account_id}:user/{ADMIN_USER}"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    try:
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
    document = {"Version": "2012-10-17", "Statement": as_moto_enforces(statements)}
    iam.put_role_policy(RoleName=name, PolicyName="function", PolicyDocument=json.dumps(document))
    return arn


def assume(stack: LocalStack, role_arn: str, session_name: str = "camsort-function") -> dict[str, str]:
    """Temporary credentials of ``role_arn``, as the environment variables Lambda sets."""
    credentials = stack.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name)[
        "Credentials"
    ]
    return {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }


def function_credentials(
    stack: LocalStack, model_uri: str, *, template: Path | None = None
) -> dict[str, str]:
    """Create the function's role on the local stack and return its credentials (env vars)."""
    statements, source = function_statements(stack, model_uri, template=template)
    log.info("local function role from %s", source)
    return assume(stack, create_function_role(stack, statements))


def describe(stack: LocalStack, model_uri: str, *, template: Path | None = None) -> str:
    """One line for a console: whether IAM is enforced, the role, where its statements come from."""
    from infra.local.stack import has_local_admin

    _, source = function_statements(stack, model_uri, template=template)
    if not has_local_admin(stack.endpoint_url, stack.region):
        return f"IAM is NOT enforced on {stack.endpoint_url} (a moto server camsort did not start)"
    return f"IAM enforced: the function runs as role {role_name(stack)}, statements from {source}"


def _object_arn(s3_uri: str) -> str:
    bucket, _, prefix = s3_uri[len("s3://") :].partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return f"arn:aws:s3:::{bucket}/{prefix}"


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
