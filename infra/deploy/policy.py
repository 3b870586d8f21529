"""IAM policies derived from the code: ``@requires`` declarations -> statements on named resources.

The function's code declares, beside each AWS call, the actions it needs on a *logical*
resource (:mod:`functions.iam`). This module is the one place those names become ARNs:

* :func:`cloudformation_target` -> what ``serverless package`` writes into the role (params
  resolved; tables as ``Fn::GetAtt``), which tests/e2e/test_serverless.py compares exactly;
* :func:`serverless_target` -> the same with ``${param:...}`` variables, i.e. the text that
  belongs in serverless.yml (``python -m infra.deploy.policy`` prints it);
* :func:`local_target` -> the local stack's ARNs, for the principal moto enforces.

Adding a resource: decorate the calls with a new logical name, add one entry to
:data:`RESOURCES` (ARN templates; ``StackArn`` for DynamoDB tables and indexes), and, for a
new table, name it in the targets' ``tables`` mapping.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from functions.iam import actions_by_resource, declared_permissions
from infra.deploy import topology

FRAMES = "frames"
MODEL = "model"
RESULTS_TABLE = "results-table"
RESULTS_INDEX = "results-index"
JOB_MODELS = "job-models"  # any model version's artifact: backfill jobs pin theirs by sha256
FEATURES = "features"  # featurize backfills: float16 feature shards and key pointers
# The S3 Batch Operations role (infra/batch_runner.run_local_job declares what a job does).
FUNCTION = "function"
BATCH_MANIFESTS = "batch-manifests"
BATCH_REPORTS = "batch-reports"
REVIEW_TABLE = "review-table"  # frames marked for review, per-camera quotas
# The audit (functions/archive/audit.py): listing the frames bucket's versions, peeking at the DLQ,
# redriving into the frames queue (camsort audit --redrive only).
FRAMES_BUCKET = "frames-bucket"
DEAD_LETTER_QUEUE = "dead-letter-queue"
FRAMES_QUEUE = "frames-queue"
STATE_TABLE = "state-table"  # camera state + event items (functions/state/camera_state.py)
EVENT_BUS = "event-bus"  # the bus state changes are published to (functions/state/event_bus.py)
# The archive as data: compaction's Parquet (functions/archive/compaction.py), the results'
# Parquet (functions/archive/results_export.py) and the results table's stream that feeds it.
ARCHIVE_FEATURES = "archive-features"
ARCHIVE_RESULTS = "archive-results"
RESULTS_STREAM = "results-stream"
ANY_STREAM = "any-stream"  # dynamodb:ListStreams has no resource type: "*" is its only form
# Cameras' regions (functions/stores/camera_configs.py): cameras/<camera_id>.json in the model bucket.
CAMERA_CONFIGS = "camera-configs"

# CloudFormation logical id of each table in serverless.yml.
RESULTS_TABLE_ID = "ResultsTable"
REVIEW_TABLE_ID = "ReviewTable"
STATE_TABLE_ID = "StateTable"
# Not a table, but resolved the same way: by its CloudFormation logical id (Fn::GetAtt Arn).
EVENT_BUS_ID = "EventBus"


@dataclass(frozen=True)
class StackArn:
    """A stack resource (a DynamoDB table or one of its indexes, the event bus) by its
    CloudFormation logical id: an intrinsic in the template, an ARN on a local stack."""

    logical_id: str
    index: str | None = None


# Logical name -> ARN templates. ``{name}`` placeholders are the target's params:
# bucket, frames_prefix, model_bucket, model_prefix (``models/<version>/``).
RESOURCES: dict[str, tuple[str | StackArn, ...]] = {
    FRAMES: ("arn:aws:s3:::{bucket}/{frames_prefix}*",),
    MODEL: (
        "arn:aws:s3:::{model_bucket}/{model_prefix}model.onnx",
        "arn:aws:s3:::{model_bucket}/{model_prefix}manifest.json",
    ),
    RESULTS_TABLE: (StackArn(RESULTS_TABLE_ID),),
    RESULTS_INDEX: (StackArn(RESULTS_TABLE_ID, index=topology.CAMERA_INDEX),),
    JOB_MODELS: (
        "arn:aws:s3:::{model_bucket}/{models_root}*/model.onnx",
        "arn:aws:s3:::{model_bucket}/{models_root}*/manifest.json",
    ),
    FEATURES: ("arn:aws:s3:::{bucket}/features/*",),
    REVIEW_TABLE: (StackArn(REVIEW_TABLE_ID),),
    FUNCTION: ("{backfill_function}",),
    BATCH_MANIFESTS: ("arn:aws:s3:::{bucket}/batch/manifests/*",),
    BATCH_REPORTS: ("arn:aws:s3:::{bucket}/batch/reports/*",),
    FRAMES_BUCKET: ("arn:aws:s3:::{bucket}",),
    DEAD_LETTER_QUEUE: ("{dead_letter_queue}",),
    FRAMES_QUEUE: ("{frames_queue}",),
    STATE_TABLE: (StackArn(STATE_TABLE_ID),),
    EVENT_BUS: (StackArn(EVENT_BUS_ID),),
    ARCHIVE_FEATURES: ("arn:aws:s3:::{bucket}/archive/features/*",),
    ARCHIVE_RESULTS: ("arn:aws:s3:::{bucket}/archive/results/*",),
    RESULTS_STREAM: ("{results_stream}",),
    ANY_STREAM: ("*",),
    CAMERA_CONFIGS: ("arn:aws:s3:::{model_bucket}/cameras/*",),
}
# Queues: an intrinsic in CloudFormation, an ARN param locally.
_QUEUE_INTRINSICS = {
    "{dead_letter_queue}": ("dead_letter_queue", {"Fn::GetAtt": ["FramesDeadLetterQueue", "Arn"]}),
    "{frames_queue}": ("frames_queue", {"Fn::GetAtt": ["FramesQueue", "Arn"]}),
}

# Statement ids, stable so that a diff of the role reads well.
_SIDS = {FRAMES: "Frames", MODEL: "Model", RESULTS_TABLE: "ResultsTable", RESULTS_INDEX: "ResultsByCamera"}


class UnknownResourceError(KeyError):
    pass


@dataclass(frozen=True)
class Target:
    """How logical names resolve in one place (CloudFormation, serverless.yml, a local stack).

    ``tables``: CloudFormation logical id -> the table's ARN there (a string or an intrinsic).
    """

    params: Mapping[str, str]
    tables: Mapping[str, Any] = field(default_factory=dict)

    def resolve(self, name: str) -> list[Any]:
        if name not in RESOURCES:
            raise UnknownResourceError(
                f"logical IAM resource {name!r} is not in infra/deploy/policy.py RESOURCES "
                f"(known: {', '.join(sorted(RESOURCES))}); add it there"
            )
        return [self._arn(template) for template in RESOURCES[name]]

    def _arn(self, template: str | StackArn) -> Any:
        if isinstance(template, StackArn):
            table = self.tables[template.logical_id]
            if template.index is None:
                return table
            if isinstance(table, str):
                return f"{table}/index/{template.index}"
            return {"Fn::Join": ["/", [table, "index", template.index]]}
        if template in _QUEUE_INTRINSICS:
            param, intrinsic = _QUEUE_INTRINSICS[template]
            return self.params.get(param, intrinsic)
        if template == "{backfill_function}":  # an intrinsic in CloudFormation, an ARN locally
            return self.params.get("backfill_function", {"Fn::GetAtt": ["BackfillLambdaFunction", "Arn"]})
        if template == "{results_stream}":
            return self.params.get("results_stream", {"Fn::GetAtt": [RESULTS_TABLE_ID, "StreamArn"]})
        return template.format(**self.params)


def _table_intrinsics() -> dict[str, Any]:
    return {
        logical_id: {"Fn::GetAtt": [logical_id, "Arn"]}
        for logical_id in (RESULTS_TABLE_ID, REVIEW_TABLE_ID, STATE_TABLE_ID, EVENT_BUS_ID)
    }


def cloudformation_target(names: topology.StackNames, *, model_version: str = "v1") -> Target:
    """The packaged template's view (serverless.yml's params resolved for a stage)."""
    return Target(
        params={
            "bucket": names.bucket,
            "frames_prefix": names.frames_prefix,
            "model_bucket": names.bucket,
            "model_prefix": f"{names.models_prefix}{model_version}/",
            "models_root": names.models_prefix,
        },
        tables=_table_intrinsics(),
    )


def serverless_target() -> Target:
    """serverless.yml's own text, with its ``${param:...}`` variables."""
    return Target(
        params={
            "bucket": "${param:bucketName}",
            "frames_prefix": "${param:framesPrefix}",
            "model_bucket": "${param:modelBucket}",
            "model_prefix": "models/${param:modelVersion}/",
            "models_root": "models/",
        },
        tables=_table_intrinsics(),
    )


def local_target(names: topology.StackNames, *, model_uri: str, region: str, account_id: str) -> Target:
    """A local stack's ARNs; ``model_uri`` is ``s3://bucket/prefix/`` as uploaded."""
    match = re.fullmatch(r"s3://([^/]+)/(.*)", model_uri)
    if not match:
        raise ValueError(f"{model_uri}: the function's model must be an s3:// URI to grant access to it")
    model_bucket, model_prefix = match.groups()
    if model_prefix and not model_prefix.endswith("/"):
        model_prefix += "/"
    return Target(
        params={
            "bucket": names.bucket,
            "frames_prefix": names.frames_prefix,
            "model_bucket": model_bucket,
            "model_prefix": model_prefix,
            "models_root": names.models_prefix,
        },
        tables={
            RESULTS_TABLE_ID: f"arn:aws:dynamodb:{region}:{account_id}:table/{names.table}",
            REVIEW_TABLE_ID: f"arn:aws:dynamodb:{region}:{account_id}:table/{names.review_table}",
            STATE_TABLE_ID: f"arn:aws:dynamodb:{region}:{account_id}:table/{names.state_table}",
            EVENT_BUS_ID: f"arn:aws:events:{region}:{account_id}:event-bus/{names.event_bus}",
        },
    )


def function_permissions(users: Iterable[Any] | None = None) -> dict[str, tuple[str, ...]]:
    """``{logical resource: actions}`` the classify function's code declares."""
    if users is None:
        from functions.aws_users import AWS_USERS

        users = AWS_USERS
    return actions_by_resource(declared_permissions(*users))


def http_permissions() -> dict[str, tuple[str, ...]]:
    """``{logical resource: actions}`` of the HTTP function (the Function URL's own role)."""
    from functions.aws_users import HTTP_USERS

    return actions_by_resource(declared_permissions(*HTTP_USERS))


def audit_permissions() -> dict[str, tuple[str, ...]]:
    """``{logical resource: actions}`` the scheduled audit function declares (its own role)."""
    from functions.audit_handler import audit_permissions as declared

    return actions_by_resource(declared())


def compaction_permissions() -> dict[str, tuple[str, ...]]:
    """``{logical resource: actions}`` of the compact function (its own role)."""
    from functions.compact_handler import compaction_permissions as declared

    return actions_by_resource(declared())


def statements(permissions: Mapping[str, Sequence[str]], target: Target) -> list[dict[str, Any]]:
    """One Allow statement per logical resource, its ARNs resolved for ``target``."""
    return [
        {
            "Sid": _SIDS.get(name, re.sub(r"(?:^|-)(\w)", lambda m: m.group(1).upper(), name)),
            "Effect": "Allow",
            "Action": list(actions),
            "Resource": target.resolve(name),
        }
        for name, actions in sorted(permissions.items())
    ]


def grants(statement_list: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """``{(action, resource as canonical JSON)}`` of the Allow statements: a comparable form."""
    pairs = set()
    for statement in statement_list:
        if statement.get("Effect") != "Allow":
            continue
        actions = statement["Action"]
        resources = statement["Resource"]
        for action in actions if isinstance(actions, list) else [actions]:
            for resource in resources if isinstance(resources, list) else [resources]:
                pairs.add((action, json.dumps(resource, sort_keys=True)))
    return pairs


ROLES = {"classify": function_permissions, "http": http_permissions, "audit": audit_permissions}


def main(argv: Sequence[str] | None = None) -> None:
    """Print a function's statements as they belong in serverless.yml (default: classify;
    ``python -m infra.deploy.policy http`` / ``audit`` for the others)."""
    import sys

    role = (list(argv) if argv is not None else sys.argv[1:] or ["classify"])[0]
    if role not in ROLES:
        raise SystemExit(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    import yaml

    class IndentedDumper(yaml.SafeDumper):
        """Lists indented under their key, as serverless.yml writes them."""

        def increase_indent(self, flow: bool = False, indentless: bool = False):
            return super().increase_indent(flow, False)

    # Through JSON: no YAML anchors for the table ARN that two statements share.
    derived = json.loads(json.dumps(statements(ROLES[role](), serverless_target())))
    print(yaml.dump(derived, Dumper=IndentedDumper, sort_keys=False), end="")


if __name__ == "__main__":
    main()
