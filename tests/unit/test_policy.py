"""infra/deploy/policy.py: logical IAM resources resolve the same way for every target."""

from __future__ import annotations

import pytest

from functions.iam import Permission, declared_permissions, requires
from infra.deploy import policy
from infra.deploy.topology import StackNames
from infra.local.iam import as_moto_enforces

NAMES = StackNames.for_stage("unit")


def test_each_logical_name_resolves_for_cloudformation_serverless_and_a_local_stack():
    cfn = policy.cloudformation_target(NAMES, model_version="v3")
    yml = policy.serverless_target()
    local = policy.local_target(
        NAMES, model_uri="s3://models-bucket/models/abc/", region="eu-west-1", account_id="123456789012"
    )
    assert cfn.resolve(policy.FRAMES) == ["arn:aws:s3:::camsort-frames-unit/frames/*"]
    assert yml.resolve(policy.FRAMES) == ["arn:aws:s3:::${param:bucketName}/${param:framesPrefix}*"]
    assert local.resolve(policy.MODEL) == [
        "arn:aws:s3:::models-bucket/models/abc/model.onnx",
        "arn:aws:s3:::models-bucket/models/abc/manifest.json",
    ]
    assert cfn.resolve(policy.MODEL)[0] == "arn:aws:s3:::camsort-frames-unit/models/v3/model.onnx"
    table = {"Fn::GetAtt": ["ResultsTable", "Arn"]}
    assert cfn.resolve(policy.RESULTS_TABLE) == [table]
    assert cfn.resolve(policy.RESULTS_INDEX) == [{"Fn::Join": ["/", [table, "index", "by_camera"]]}]
    arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/camsort-results-unit"
    assert local.resolve(policy.RESULTS_TABLE) == [arn]
    assert local.resolve(policy.RESULTS_INDEX) == [f"{arn}/index/by_camera"]
    assert cfn.resolve(policy.STATE_TABLE) == [{"Fn::GetAtt": ["StateTable", "Arn"]}]
    assert cfn.resolve(policy.EVENT_BUS) == [{"Fn::GetAtt": ["EventBus", "Arn"]}]
    assert local.resolve(policy.STATE_TABLE) == [
        "arn:aws:dynamodb:eu-west-1:123456789012:table/camsort-state-unit"
    ]
    assert local.resolve(policy.EVENT_BUS) == [
        "arn:aws:events:eu-west-1:123456789012:event-bus/camsort.events.unit"
    ]
    with pytest.raises(policy.UnknownResourceError, match="RESOURCES"):
        local.resolve("no-such-resource")


def test_statements_group_the_declared_actions_by_resource():
    class Adapter:
        @requires("s3:GetObject", resource="frames")
        def read(self): ...

        @requires("s3:PutObjectTagging", "s3:GetObject", resource="frames")
        def tag(self): ...

    @requires("dynamodb:PutItem", resource="results-table")
    def write(): ...

    assert declared_permissions(Adapter, write) == [
        Permission("frames", ("s3:GetObject",)),
        Permission("frames", ("s3:GetObject", "s3:PutObjectTagging")),
        Permission("results-table", ("dynamodb:PutItem",)),
    ]
    permissions = policy.function_permissions([Adapter, write])
    statements = policy.statements(permissions, policy.cloudformation_target(NAMES))
    assert [(s["Sid"], s["Action"]) for s in statements] == [
        ("Frames", ["s3:GetObject", "s3:PutObjectTagging"]),
        ("ResultsTable", ["dynamodb:PutItem"]),
    ]
    assert ("s3:PutObjectTagging", '"arn:aws:s3:::camsort-frames-unit/frames/*"') in policy.grants(statements)


def test_moto_gets_dynamodb_statements_on_star_and_the_rest_unchanged():
    statements = [
        {"Effect": "Allow", "Action": ["dynamodb:PutItem"], "Resource": ["arn:aws:dynamodb:r:1:table/t"]},
        {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/frames/*"]},
    ]
    adapted = as_moto_enforces(statements)
    assert adapted[0]["Resource"] == "*" and adapted[0]["Action"] == ["dynamodb:PutItem"]
    assert adapted[1] == statements[1]
    assert statements[0]["Resource"] == ["arn:aws:dynamodb:r:1:table/t"]  # the input is untouched
    queue = [
        {"Effect": "Allow", "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage"], "Resource": ["arn:q"]}
    ]
    assert as_moto_enforces(queue)[0]["Action"] == [
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:DeleteMessageBatch",
    ]
