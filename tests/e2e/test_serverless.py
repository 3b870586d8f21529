"""serverless.yml, packaged by the real Serverless Framework, linted, and deployed to moto.

``serverless package --stage test`` runs offline (dummy credentials, telemetry and
notifications off, HTTP(S) proxies pointing at a closed local port, and a timeout), with the
real arm64 artifact from ``infra/deploy/package.py``. The CloudFormation it writes is

* linted by cfn-lint;
* checked against ``infra/deploy/topology.py`` (names, keys, GSI, redrive, suffix filters) — the
  local moto stack is built from the same module, so the two cannot drift;
* created in moto's CloudFormation over HTTP the way ``serverless deploy`` does it (create
  the core stack, upload the artifact to its deployment bucket, update to the full
  template), then the live resources are read back.

moto 5.2.5's CloudFormation does not materialise every property: it skips
``AWS::S3::BucketPolicy``, ``AWS::SQS::QueuePolicy`` and ``AWS::CloudWatch::Alarm``
resources (and creates ``AWS::Lambda::Version`` without a physical id), and ignores a bucket's
``NotificationConfiguration``, ``PublicAccessBlock``, ``OwnershipControls``, versioning and
lifecycle, a table's PITR and a function's ``Architectures``. Those are
checked on the template (which cfn-lint validates against CloudFormation's schemas), and the
notification rules are additionally put on the moto bucket through the S3 API to prove,
by uploading keys, that they route exactly the frames to the queue.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import unquote_plus

import pytest
import yaml
from botocore.config import Config

from functions import env
from infra import PROJECT_ROOT
from infra.deploy import policy, topology
from infra.local.batch_runner import batch_operations_permissions
from infra.local.moto_server import MotoServer
from tests.fixtures.aws import aws_client
from tests.fixtures.deploy import TEST_MODEL_SHA256, packaged_service, run_serverless_package

pytestmark = pytest.mark.e2e

STAGE = "test"
NAMES = topology.StackNames.for_stage(STAGE)
# Lambda gives one vCPU of credit per 1,769 MB.
MB_PER_VCPU = 1769
# What the Framework adds to the role itself: log writes, and the SQS event source's consume.
FRAMEWORK_ACTIONS = ("logs:",)
QUEUE_CONSUME_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}


@pytest.fixture(scope="module")
def packaged(tmp_path_factory, arm64_package, archive_package):
    return packaged_service(
        tmp_path_factory.mktemp("sls") / "service", arm64_package.artifact, archive=archive_package.artifact
    )


@pytest.fixture(scope="module")
def template(packaged) -> dict:
    return json.loads((packaged[1] / "cloudformation-template-update-stack.json").read_text())


@pytest.fixture(scope="module")
def resources(template) -> dict:
    return template["Resources"]


def props(resources: dict, logical_id: str) -> dict:
    return resources[logical_id]["Properties"]


def of_type(resources: dict, resource_type: str) -> dict:
    return {k: v for k, v in resources.items() if v["Type"] == resource_type}


# --- the Framework run ----------------------------------------------------------------------


def test_serverless_packages_offline_without_any_warning(packaged):
    result, out_dir = packaged
    output = result.stdout + result.stderr
    assert "Service packaged" in output
    assert {p.name for p in out_dir.glob("*.json")} >= {
        "cloudformation-template-create-stack.json",
        "cloudformation-template-update-stack.json",
    }
    # osls validates the configuration against its schema (python3.12 included) and reports
    # problems as "Warning..." / "at '<path>': ..." lines: there must be none.
    assert [line for line in output.splitlines() if line.strip().startswith(("at '", "Warning"))] == []
    assert "warning" not in output.lower()


def test_the_model_pin_is_a_required_deploy_parameter(
    packaged, resources, tmp_path, arm64_package, archive_package
):
    variables = props(resources, "ClassifyLambdaFunction")["Environment"]["Variables"]
    assert variables[env.MODEL_SHA256] == TEST_MODEL_SHA256
    service = tmp_path / "unpinned"
    service.mkdir()
    shutil.copyfile(PROJECT_ROOT / "serverless.yml", service / "serverless.yml")
    (service / "build").mkdir()
    shutil.copyfile(arm64_package.artifact, service / "build" / arm64_package.artifact.name)
    shutil.copyfile(archive_package.artifact, service / "build" / archive_package.artifact.name)
    result = run_serverless_package(service, model_sha256=None)
    assert result.returncode != 0
    assert (
        f'Cannot resolve variable at "provider.environment.{env.MODEL_SHA256}"'
        in result.stdout + result.stderr
    )


def test_named_models_come_from_the_stage_deploy_file_pinned(tmp_path, arm64_package, archive_package):
    """deploy/<stage>.json's named models reach both functions as CAMSORT_NAMED_MODELS, pins and all."""
    from infra.deploy.deploy_file import DeployConfig, ModelPin, ModelSlot

    bucket = f"s3://{NAMES.bucket}/{NAMES.models_prefix}"
    config = DeployConfig(
        live=ModelPin("v1", f"{bucket}v1/", "1" * 64),
        models={
            "bay": ModelSlot(
                ModelPin("v3", f"{bucket}bay/v3/", "3" * 64),
                candidate=ModelPin("v4", f"{bucket}bay/v4/", "4" * 64),
            ),
            "gate": ModelSlot(ModelPin("v1", f"{bucket}gate/v1/", "7" * 64)),
        },
    )
    service = tmp_path / "named"
    (service / "deploy").mkdir(parents=True)
    (service / "deploy" / "test.json").write_text(json.dumps(config.to_file()))
    shutil.copyfile(PROJECT_ROOT / "serverless.yml", service / "serverless.yml")
    (service / "build").mkdir()
    shutil.copyfile(arm64_package.artifact, service / "build" / arm64_package.artifact.name)
    shutil.copyfile(archive_package.artifact, service / "build" / archive_package.artifact.name)
    result = run_serverless_package(service, model_sha256=None)
    assert result.returncode == 0, result.stdout + result.stderr
    template = json.loads((service / ".serverless" / "cloudformation-template-update-stack.json").read_text())
    for function in ("ClassifyLambdaFunction", "HttpLambdaFunction"):
        variables = props(template["Resources"], function)["Environment"]["Variables"]
        assert json.loads(variables[env.NAMED_MODELS]) == {
            "bay": {
                "uri": f"{bucket}bay/v3/",
                "sha256": "3" * 64,
                "candidate_uri": f"{bucket}bay/v4/",
                "candidate_sha256": "4" * 64,
            },
            "gate": {"uri": f"{bucket}gate/v1/", "sha256": "7" * 64},
        }
        assert variables[env.MODEL_SHA256] == "1" * 64  # the default's pin, from the same file


def test_template_passes_cfn_lint(packaged):
    for name in ("cloudformation-template-create-stack.json", "cloudformation-template-update-stack.json"):
        result = subprocess.run(
            [str(Path(sys.executable).parent / "cfn-lint"), str(packaged[1] / name)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"{name}:\n{result.stdout}{result.stderr}"


def test_the_resources_are_exactly_these(resources):
    assert sorted(
        (logical_id, r["Type"]) for logical_id, r in resources.items() if r["Type"] != "AWS::Lambda::Version"
    ) == [
        ("AlarmTopic", "AWS::SNS::Topic"),
        ("ArchiveDatabase", "AWS::Glue::Database"),
        ("AuditErrorsAlarm", "AWS::CloudWatch::Alarm"),
        ("AuditEventsRuleSchedule1", "AWS::Events::Rule"),
        ("AuditFunctionRole", "AWS::IAM::Role"),
        ("AuditHeartbeatAlarm", "AWS::CloudWatch::Alarm"),
        ("AuditLambdaFunction", "AWS::Lambda::Function"),
        ("AuditLambdaPermissionEventsRuleSchedule1", "AWS::Lambda::Permission"),
        ("AuditLogGroup", "AWS::Logs::LogGroup"),
        ("BackfillErrorsAlarm", "AWS::CloudWatch::Alarm"),
        ("BackfillLambdaFunction", "AWS::Lambda::Function"),
        ("BackfillLogGroup", "AWS::Logs::LogGroup"),
        ("BatchOperationsRole", "AWS::IAM::Role"),
        ("ClassifyErrorsAlarm", "AWS::CloudWatch::Alarm"),
        ("ClassifyEventSourceMappingSQSFramesQueue", "AWS::Lambda::EventSourceMapping"),
        ("ClassifyLambdaFunction", "AWS::Lambda::Function"),
        ("ClassifyLogGroup", "AWS::Logs::LogGroup"),
        ("CompactErrorsAlarm", "AWS::CloudWatch::Alarm"),
        ("CompactEventsRuleSchedule1", "AWS::Events::Rule"),
        ("CompactFunctionRole", "AWS::IAM::Role"),
        ("CompactLambdaFunction", "AWS::Lambda::Function"),
        ("CompactLambdaPermissionEventsRuleSchedule1", "AWS::Lambda::Permission"),
        ("CompactLogGroup", "AWS::Logs::LogGroup"),
        ("DeadLetterQueueAlarm", "AWS::CloudWatch::Alarm"),
        ("EventBus", "AWS::Events::EventBus"),
        ("ExportResultsErrorsAlarm", "AWS::CloudWatch::Alarm"),
        ("ExportResultsFunctionRole", "AWS::IAM::Role"),
        ("ExportResultsLambdaFunction", "AWS::Lambda::Function"),
        ("ExportResultsLogGroup", "AWS::Logs::LogGroup"),
        ("FramesBucket", "AWS::S3::Bucket"),
        ("FramesBucketPolicy", "AWS::S3::BucketPolicy"),
        ("FramesDeadLetterQueue", "AWS::SQS::Queue"),
        ("FramesQueue", "AWS::SQS::Queue"),
        ("FramesQueuePolicy", "AWS::SQS::QueuePolicy"),
        ("HttpErrorsAlarm", "AWS::CloudWatch::Alarm"),
        ("HttpFunctionRole", "AWS::IAM::Role"),
        ("HttpLambdaFunction", "AWS::Lambda::Function"),
        ("HttpLambdaFunctionUrl", "AWS::Lambda::Url"),
        ("HttpLogGroup", "AWS::Logs::LogGroup"),
        ("IamRoleLambdaExecution", "AWS::IAM::Role"),
        ("ResultsArchiveTable", "AWS::Glue::Table"),
        ("ResultsStreamMapping", "AWS::Lambda::EventSourceMapping"),
        ("ResultsTable", "AWS::DynamoDB::Table"),
        ("ReviewTable", "AWS::DynamoDB::Table"),
        ("ServerlessDeploymentBucket", "AWS::S3::Bucket"),
        ("ServerlessDeploymentBucketPolicy", "AWS::S3::BucketPolicy"),
        ("StateTable", "AWS::DynamoDB::Table"),
        ("UnaccountedFramesAlarm", "AWS::CloudWatch::Alarm"),
    ]
    # classify, http, backfill, audit, compact, exportResults
    assert len(of_type(resources, "AWS::Lambda::Version")) == 6


def test_function_url_needs_iam_and_nothing_is_public(resources):
    (url,) = [r["Properties"] for r in of_type(resources, "AWS::Lambda::Url").values()]
    assert url["AuthType"] == "AWS_IAM"
    # the URL's own function, not the SQS poller's: a burst of requests cannot throttle it
    assert url["TargetFunctionArn"] == {"Fn::GetAtt": ["HttpLambdaFunction", "Arn"]}
    # no resource policy opens the URL to everyone (a NONE-auth URL would need one)
    assert not [
        r
        for r in of_type(resources, "AWS::Lambda::Permission").values()
        if r["Properties"].get("FunctionUrlAuthType") == "NONE" or r["Properties"].get("Principal") == "*"
    ]


# --- against infra/deploy/topology.py (no drift from the local moto stack) ---------------------------


def test_names_match_topology(resources):
    assert props(resources, "FramesBucket")["BucketName"] == NAMES.bucket
    assert props(resources, "FramesQueue")["QueueName"] == NAMES.queue
    assert props(resources, "FramesDeadLetterQueue")["QueueName"] == NAMES.dead_letter_queue
    assert props(resources, "ResultsTable")["TableName"] == NAMES.table
    assert props(resources, "ReviewTable")["TableName"] == NAMES.review_table
    assert [k["AttributeName"] for k in props(resources, "ReviewTable")["KeySchema"]] == [
        topology.REVIEW_PARTITION_KEY,
        topology.REVIEW_SORT_KEY,
    ]
    assert props(resources, "ReviewTable")["TimeToLiveSpecification"]["AttributeName"] == (
        topology.REVIEW_TTL_ATTRIBUTE
    )
    assert props(resources, "StateTable")["TableName"] == NAMES.state_table
    assert props(resources, "EventBus")["Name"] == NAMES.event_bus


def test_notification_sends_every_object_under_the_prefix_to_the_queue(resources):
    bucket = resources["FramesBucket"]
    # S3 checks the destination when the notification is attached: the policy must exist first.
    assert "FramesQueuePolicy" in bucket["DependsOn"]
    rules = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert "LambdaConfigurations" not in bucket["Properties"]["NotificationConfiguration"]
    # One rule, the prefix only (no case-sensitive suffix filter to fall through).
    (rule,) = rules
    assert rule["Event"] in topology.NOTIFICATION_EVENTS
    assert rule["Queue"] == {"Fn::GetAtt": ["FramesQueue", "Arn"]}
    assert rule["Filter"]["S3Key"]["Rules"] == topology.notification_filter_rules(NAMES.frames_prefix)


def test_queue_redrives_to_the_dlq_after_max_receive_count(resources):
    queue = props(resources, "FramesQueue")
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["FramesDeadLetterQueue", "Arn"]},
        "maxReceiveCount": topology.MAX_RECEIVE_COUNT,
    }
    function = props(resources, "ClassifyLambdaFunction")
    assert queue["VisibilityTimeout"] >= topology.VISIBILITY_TIMEOUT_FACTOR * function["Timeout"]
    assert props(resources, "FramesDeadLetterQueue")["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_every_stage_keeps_visibility_timeout_and_threads_consistent():
    params = yaml.safe_load((PROJECT_ROOT / "serverless.yml").read_text())["params"]
    assert {"default", "dev", "prod"} <= set(params)
    for stage, overrides in params.items():
        values = {**params["default"], **overrides}
        assert values["queueVisibilityTimeout"] >= topology.VISIBILITY_TIMEOUT_FACTOR * values["timeout"], (
            stage
        )
        # Each onnxruntime thread needs a vCPU of credit (1,769 MB).
        assert values["onnxThreads"] * MB_PER_VCPU <= values["memorySize"], stage
        # SQS maximumConcurrency (set to reservedConcurrency) is at least 2.
        assert values["reservedConcurrency"] >= 2, stage


def test_backfill_cost_estimates_use_the_memory_the_functions_deploy_with():
    config = yaml.safe_load((PROJECT_ROOT / "serverless.yml").read_text())
    assert config["params"]["default"]["memorySize"] == topology.FUNCTION_MEMORY_MB
    # The backfill function inherits the provider's memorySize: `camsort backfill`'s estimate holds.
    assert "memorySize" not in config["functions"]["backfill"]
    stages = {stage: overrides for stage, overrides in config["params"].items() if stage != "default"}
    assert all("memorySize" not in (overrides or {}) for overrides in stages.values())


def test_results_table_keys_gsi_billing_and_pitr(resources):
    table = props(resources, "ResultsTable")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["KeySchema"] == [
        {"AttributeName": topology.TABLE_PARTITION_KEY, "KeyType": "HASH"},
        {"AttributeName": topology.TABLE_SORT_KEY, "KeyType": "RANGE"},
    ]
    assert table["GlobalSecondaryIndexes"] == [
        {
            "IndexName": topology.CAMERA_INDEX,
            "KeySchema": [
                {"AttributeName": topology.CAMERA_INDEX_PARTITION_KEY, "KeyType": "HASH"},
                {"AttributeName": topology.CAMERA_INDEX_SORT_KEY, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
    ]
    key_names = {
        topology.TABLE_PARTITION_KEY,
        topology.TABLE_SORT_KEY,
        topology.CAMERA_INDEX_PARTITION_KEY,
        topology.CAMERA_INDEX_SORT_KEY,
    }
    assert {(a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]} == {
        (name, "S") for name in key_names
    }
    assert resources["ResultsTable"]["DeletionPolicy"] == "Retain"


# --- bucket security ---------------------------------------------------------------------------


def test_bucket_is_private_encrypted_versioned_and_tls_only(template, resources):
    bucket = props(resources, "FramesBucket")
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    (statement,) = props(resources, "FramesBucketPolicy")["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*" and statement["Action"] == "s3:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == [f"arn:aws:s3:::{NAMES.bucket}", f"arn:aws:s3:::{NAMES.bucket}/*"]
    # createBucket=false leaves both out (existing bucket; see docs/deploy.md).
    assert (
        resources["FramesBucket"]["Condition"]
        == resources["FramesBucketPolicy"]["Condition"]
        == "CreateBucket"
    )
    assert template["Parameters"]["CreateFramesBucket"]["Default"] == "true"


def test_queue_policy_admits_only_the_frames_bucket_of_this_account(resources):
    policy = props(resources, "FramesQueuePolicy")
    assert policy["Queues"] == [{"Ref": "FramesQueue"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == {"Fn::GetAtt": ["FramesQueue", "Arn"]}
    assert statement["Condition"] == {
        "ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{NAMES.bucket}"},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }


def test_dlq_alarm_fires_on_any_visible_message(resources):
    alarm = props(resources, "DeadLetterQueueAlarm")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["FramesDeadLetterQueue", "QueueName"]}}
    ]
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


# --- the function ---------------------------------------------------------------------------


def test_function_runs_the_handler_from_the_packaged_artifact(resources, arm64_package):
    function = props(resources, "ClassifyLambdaFunction")
    assert function["Handler"] == "functions.handler.lambda_handler"
    with zipfile.ZipFile(arm64_package.artifact) as archive:  # the artifact, not the repository
        assert "def lambda_handler(" in archive.read("functions/handler.py").decode()
    assert function["Runtime"] == "python3.12"
    # The artifact's name carries its architecture: a mismatch cannot deploy silently.
    assert function["Architectures"] == [arm64_package.architecture]
    assert function["Code"]["S3Key"].endswith("/" + arm64_package.artifact.name)
    assert function["MemorySize"] >= int(function["Environment"]["Variables"][env.ONNX_THREADS]) * MB_PER_VCPU


def test_environment_uses_only_names_from_functions_env(resources):
    variables = props(resources, "ClassifyLambdaFunction")["Environment"]["Variables"]
    known = {value for name, value in vars(env).items() if name.isupper() and isinstance(value, str)}
    assert set(variables) <= known
    assert variables[env.RESULTS_TABLE] == NAMES.table
    assert variables[env.FRAMES_PREFIX] == NAMES.frames_prefix
    assert variables[env.MODEL_URI] == f"s3://{NAMES.bucket}/{NAMES.models_prefix}v1/"
    assert int(variables[env.MAX_PIXELS]) == env.DEFAULT_MAX_PIXELS
    assert int(variables[env.MAX_BYTES]) == env.DEFAULT_MAX_BYTES


def test_event_source_reports_batch_item_failures(resources):
    (mapping,) = [
        m
        for m in of_type(resources, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["FramesQueue", "Arn"]}
    ]
    properties = mapping["Properties"]
    assert properties["FunctionName"] == {"Fn::GetAtt": ["ClassifyLambdaFunction", "Arn"]}
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["BatchSize"] == 10
    reserved = props(resources, "ClassifyLambdaFunction")["ReservedConcurrentExecutions"]
    assert properties["ScalingConfig"] == {"MaximumConcurrency": reserved}


def _statements(resources: dict) -> list[dict]:
    (policy,) = props(resources, "IamRoleLambdaExecution")["Policies"]
    return policy["PolicyDocument"]["Statement"]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_role_grants_exactly_what_the_code_declares(resources):
    """The role = the @requires declarations of the function's code (infra/deploy/policy.py), no more."""
    statements = _statements(resources)
    for statement in statements:
        assert statement["Effect"] == "Allow", statement
        assert not [a for a in _as_list(statement["Action"]) if "*" in a], statement
        assert "*" not in _as_list(statement["Resource"]), statement
    granted = policy.grants(statements)
    data = {
        (a, r) for a, r in granted if not a.startswith(FRAMEWORK_ACTIONS) and a not in QUEUE_CONSUME_ACTIONS
    }
    derived = policy.statements(policy.function_permissions(), policy.cloudformation_target(NAMES))
    assert data == policy.grants(derived)
    queue = json.dumps({"Fn::GetAtt": ["FramesQueue", "Arn"]}, sort_keys=True)
    assert {(a, r) for a, r in granted if a.startswith("sqs:")} == {(a, queue) for a in QUEUE_CONSUME_ACTIONS}


def test_batch_operations_role_grants_exactly_what_a_job_declares(resources):
    role = props(resources, "BatchOperationsRole")
    trust = role["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "batchoperations.s3.amazonaws.com"}]
    statements = [st for p in role["Policies"] for st in p["PolicyDocument"]["Statement"]]
    for statement in statements:
        assert "*" not in _as_list(statement["Resource"]), statement
    derived = policy.statements(batch_operations_permissions(), policy.cloudformation_target(NAMES))
    assert policy.grants(statements) == policy.grants(derived)


def test_the_derived_set_holds_every_call_the_function_makes():
    # A fact check on the declarations themselves (the missing actions included).
    permissions = policy.function_permissions()
    assert set(permissions) == {
        policy.FRAMES,
        policy.MODEL,
        policy.RESULTS_TABLE,
        policy.JOB_MODELS,
        policy.FEATURES,
        policy.REVIEW_TABLE,
        policy.STATE_TABLE,
        policy.EVENT_BUS,
        policy.CAMERA_CONFIGS,
    }
    # cameras' regions: read (a conditional GET), never listed or written
    assert permissions[policy.CAMERA_CONFIGS] == ("s3:GetObject",)
    # camera state: one conditional PutItem per frame after a GetItem; events: PutEvents only
    assert permissions[policy.STATE_TABLE] == ("dynamodb:GetItem", "dynamodb:PutItem")
    assert permissions[policy.EVENT_BUS] == ("events:PutEvents",)
    assert {"s3:GetObjectTagging", "s3:GetObjectVersionTagging", "s3:PutObjectTagging"} <= set(
        permissions[policy.FRAMES]
    )
    # the redelivery look-up (and its side-effect completion) reads with BatchGetItem only:
    # GetItem and the camera index's Query are the CLI's and the audit's (DeleteItem: a finished
    # decode's mark, UpdateItem: the mark and the shadow answer)
    assert permissions[policy.RESULTS_TABLE] == (
        "dynamodb:BatchGetItem",
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    )
    assert permissions[policy.MODEL] == ("s3:GetObject",)  # the model is read, never tagged


def test_batch_operations_role_may_only_invoke_the_function_read_manifests_and_write_reports(
    template, resources
):
    role = props(resources, "BatchOperationsRole")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert (trust["Principal"], trust["Action"]) == (
        {"Service": "batchoperations.s3.amazonaws.com"},
        "sts:AssumeRole",
    )
    (policy,) = role["Policies"]
    granted = {
        (tuple(_as_list(s["Action"])), json.dumps(_as_list(s["Resource"])))
        for s in policy["PolicyDocument"]["Statement"]
    }
    assert granted == {
        (("lambda:InvokeFunction",), json.dumps([{"Fn::GetAtt": ["BackfillLambdaFunction", "Arn"]}])),
        (
            ("s3:GetObject", "s3:GetObjectVersion"),
            json.dumps([f"arn:aws:s3:::{NAMES.bucket}/batch/manifests/*"]),
        ),
        (("s3:PutObject",), json.dumps([f"arn:aws:s3:::{NAMES.bucket}/batch/reports/*"])),
    }
    outputs = template["Outputs"]
    assert outputs["BatchOperationsRoleArn"]["Value"] == {"Fn::GetAtt": ["BatchOperationsRole", "Arn"]}
    assert outputs["BackfillFunctionArn"]["Value"] == {"Fn::GetAtt": ["BackfillLambdaFunction", "Arn"]}
    # Same code and role as classify, its own concurrency pool, no event source.
    backfill, classify = (
        props(resources, "BackfillLambdaFunction"),
        props(resources, "ClassifyLambdaFunction"),
    )
    assert (backfill["Handler"], backfill["Role"], backfill["Code"]) == (
        classify["Handler"],
        classify["Role"],
        classify["Code"],
    )
    assert backfill["ReservedConcurrentExecutions"] == 10  # the default backfillConcurrency
    assert not [
        r
        for r in of_type(resources, "AWS::Lambda::EventSourceMapping").values()
        if r["Properties"]["FunctionName"] == {"Fn::GetAtt": ["BackfillLambdaFunction", "Arn"]}
    ]


def test_http_function_has_its_own_capacity_and_a_read_only_role_derived_from_its_calls(resources):
    http, classify = props(resources, "HttpLambdaFunction"), props(resources, "ClassifyLambdaFunction")
    assert (http["Handler"], http["Code"]) == (classify["Handler"], classify["Code"])  # the same artifact
    assert http["Role"] == {"Fn::GetAtt": ["HttpFunctionRole", "Arn"]} != classify["Role"]
    assert (http["ReservedConcurrentExecutions"], http["MemorySize"]) == (2, 1769)  # the defaults
    assert (
        not [  # no queue feeds it: the SQS poller's slots are classify's alone
            r
            for r in of_type(resources, "AWS::Lambda::EventSourceMapping").values()
            if r["Properties"]["FunctionName"] == {"Fn::GetAtt": ["HttpLambdaFunction", "Arn"]}
        ]
    )
    variables = http["Environment"]["Variables"]
    # what its role leaves out, its settings switch off: tags and the shadow candidate
    assert variables[env.WRITE_TAGS] == "false"
    assert variables.get(env.CANDIDATE_MODEL_URI, "") == "" == variables.get(env.CANDIDATE_MODEL_SHA256, "")

    (role_policy,) = props(resources, "HttpFunctionRole")["Policies"]
    statements = [s for s in role_policy["PolicyDocument"]["Statement"] if s["Sid"] != "OwnLogs"]
    derived = policy.statements(policy.http_permissions(), policy.cloudformation_target(NAMES))
    granted = policy.grants(statements)
    assert granted == policy.grants(derived)
    frames = json.dumps(f"arn:aws:s3:::{NAMES.bucket}/{NAMES.frames_prefix}*")
    model = {
        json.dumps(f"arn:aws:s3:::{NAMES.bucket}/{NAMES.models_prefix}v1/{name}")
        for name in ("model.onnx", "manifest.json")
    }
    # A frame written on request gets its camera's regions (cameras/*), answered by the named
    # models (models/<name>/<version>/, the job-models grant): docs/regions.md.
    regions = {json.dumps(f"arn:aws:s3:::{NAMES.bucket}/cameras/*")} | {
        json.dumps(f"arn:aws:s3:::{NAMES.bucket}/{NAMES.models_prefix}*/{name}")
        for name in ("model.onnx", "manifest.json")
    }
    s3 = {(a, r) for a, r in granted if a.startswith("s3:")}
    assert s3 == {("s3:GetObject", frames), ("s3:GetObjectVersion", frames)} | {
        ("s3:GetObject", m) for m in model | regions
    }
    assert not [r for _, r in granted if "features" in r]


def test_every_function_has_an_errors_alarm_and_the_audit_a_heartbeat(resources):
    alarms = [r["Properties"] for r in of_type(resources, "AWS::CloudWatch::Alarm").values()]
    errors = [a for a in alarms if (a["Namespace"], a["MetricName"]) == ("AWS/Lambda", "Errors")]
    assert sorted(a["Dimensions"][0]["Value"]["Ref"] for a in errors) == sorted(
        of_type(resources, "AWS::Lambda::Function")
    )
    for alarm in errors:
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    heartbeat = props(resources, "AuditHeartbeatAlarm")
    # the metric the audit emits, in the namespace and dimension Powertools gives it
    assert (heartbeat["Namespace"], heartbeat["MetricName"]) == ("camsort", "AuditHeartbeat")
    assert heartbeat["Dimensions"] == [{"Name": "service", "Value": "camsort"}]
    assert (heartbeat["ComparisonOperator"], heartbeat["Threshold"]) == ("LessThanThreshold", 1)
    assert heartbeat["TreatMissingData"] == "breaching"  # no run at all is what it is for
    assert heartbeat["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_audit_runs_on_a_schedule_under_its_own_role_derived_from_its_calls(resources):
    from functions.audit_handler import audit_permissions
    from functions.iam import actions_by_resource

    def audit_permissions_by_resource():
        return actions_by_resource(audit_permissions())

    function = props(resources, "AuditLambdaFunction")
    assert function["Handler"] == "functions.audit_handler.lambda_handler"
    assert function["Role"] == {"Fn::GetAtt": ["AuditFunctionRole", "Arn"]}
    variables = function["Environment"]["Variables"]
    assert variables[env.FRAMES_BUCKET] == NAMES.bucket
    assert variables[env.DEAD_LETTER_QUEUE_URL] == {"Ref": "FramesDeadLetterQueue"}
    (rule,) = [r for r in of_type(resources, "AWS::Events::Rule").values() if "Audit" in json.dumps(r)]
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": ["AuditLambdaFunction", "Arn"]}

    # Exactly the derived grants (infra/deploy/policy.py resolves the logical names), plus its logs.
    from infra.deploy import policy

    derived = policy.statements(policy.audit_permissions(), policy.cloudformation_target(NAMES))
    (role_policy,) = props(resources, "AuditFunctionRole")["Policies"]
    granted = [s for s in role_policy["PolicyDocument"]["Statement"] if s["Sid"] != "OwnLogs"]
    assert policy.grants(granted) == policy.grants(derived)
    assert {name for name, _ in audit_permissions_by_resource().items()} == {
        "frames-bucket", "results-table", "results-index", "dead-letter-queue",
        "state-table", "event-bus"}  # fmt: skip  # the outbox flush: a quiet camera's event goes out
    assert variables[env.AUDIT_LISTING] == "time-named"  # bounded by the window, not the bucket

    alarm = props(resources, "UnaccountedFramesAlarm")
    assert (alarm["Namespace"], alarm["MetricName"]) == ("camsort", "Unaccounted")
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_archive_functions_run_from_their_own_artifact_under_roles_derived_from_their_calls(
    resources, arm64_package, archive_package
):
    from functions.archive.results_export import SCHEMA
    from infra.local.results_stream import results_export_permissions

    target = policy.cloudformation_target(NAMES)
    for function, role, derived, handler in (
        ("CompactLambdaFunction", "CompactFunctionRole", policy.compaction_permissions(), "compact_handler"),
        ("ExportResultsLambdaFunction", "ExportResultsFunctionRole", results_export_permissions(), "archive.results_export"),
    ):  # fmt: skip
        properties = props(resources, function)
        assert properties["Handler"] == f"functions.{handler}.lambda_handler"
        assert properties["Code"]["S3Key"].endswith("/" + archive_package.artifact.name)
        assert properties["Role"] == {"Fn::GetAtt": [role, "Arn"]}
        (role_policy,) = props(resources, role)["Policies"]
        granted = [s for s in role_policy["PolicyDocument"]["Statement"] if s["Sid"] != "OwnLogs"]
        assert policy.grants(granted) == policy.grants(policy.statements(derived, target)), function
    # pyarrow ships only in the archive artifact; the classify one is as lean as before.
    with zipfile.ZipFile(archive_package.artifact) as archive:
        names = archive.namelist()
        assert any(n.startswith("pyarrow/") for n in names) and not any(
            n.startswith("onnxruntime/") for n in names
        )
    with zipfile.ZipFile(arm64_package.artifact) as archive:
        assert not any(n.startswith("pyarrow/") for n in archive.namelist())

    # Compaction on a schedule; the export fed by the results table's stream (NEW_IMAGE).
    assert props(resources, "ResultsTable")["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    (stream,) = [
        m["Properties"]
        for m in of_type(resources, "AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["ResultsTable", "StreamArn"]}
    ]
    assert stream["FunctionName"] == {"Fn::GetAtt": ["ExportResultsLambdaFunction", "Arn"]}
    assert (
        stream["BatchSize"],
        stream["MaximumBatchingWindowInSeconds"],
        stream["BisectBatchOnFunctionError"],
    ) == (10000, 300, True)
    (schedule,) = [r for r in of_type(resources, "AWS::Events::Rule").values() if "Compact" in json.dumps(r)]
    assert schedule["Properties"]["ScheduleExpression"] == "rate(6 hours)"

    # The Glue table Athena queries: exactly the exported columns, partitioned (projected) by day.
    table = props(resources, "ResultsArchiveTable")["TableInput"]
    columns = table["StorageDescriptor"]["Columns"]
    assert [c["Name"] for c in columns] == SCHEMA.names
    assert table["PartitionKeys"] == [{"Name": "day", "Type": "string"}]
    assert table["Parameters"]["projection.enabled"] == "true"
    assert table["StorageDescriptor"]["Location"] == f"s3://{NAMES.bucket}/archive/results/"
    assert props(resources, "ArchiveDatabase")["DatabaseInput"]["Name"] == f"camsort_{STAGE}"


def test_existing_bucket_variant_leaves_the_bucket_out(tmp_path, arm64_package, archive_package):
    _, out_dir = packaged_service(
        tmp_path / "service",
        arm64_package.artifact,
        "--param=createBucket=false",
        archive=archive_package.artifact,
    )
    path = out_dir / "cloudformation-template-update-stack.json"
    template = json.loads(path.read_text())
    assert template["Parameters"]["CreateFramesBucket"]["Default"] == "false"
    assert template["Conditions"]["CreateBucket"] == {"Fn::Equals": [{"Ref": "CreateFramesBucket"}, "true"]}
    # The queue policy and IAM still name the (existing) bucket.
    assert "FramesQueuePolicy" in template["Resources"]


# --- deployed into moto's CloudFormation -------------------------------------------------------


@pytest.fixture(scope="module")
def deployed(packaged, template, arm64_package, archive_package, tmp_path_factory):
    """The stack in moto, deployed the way `serverless deploy` does it."""
    out_dir = packaged[1]
    with MotoServer(log_path=tmp_path_factory.mktemp("moto") / "moto.log") as server:
        # Creating the stack takes moto a while on a busy machine: no client-side retry of a
        # CreateStack that is still running (the retry would find the stack "already exists").
        cloudformation = aws_client(
            "cloudformation",
            server.endpoint_url,
            config=Config(read_timeout=300, retries={"mode": "standard", "max_attempts": 1}),
        )
        stack = f"camsort-{STAGE}"
        cloudformation.create_stack(
            StackName=stack,
            TemplateBody=json.dumps(
                _without_unsupported(
                    json.loads((out_dir / "cloudformation-template-create-stack.json").read_text())
                )
            ),
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        deployment_bucket = _output(cloudformation, stack, "ServerlessDeploymentBucketName")
        code_key = template["Resources"]["ClassifyLambdaFunction"]["Properties"]["Code"]["S3Key"]
        aws_client("s3", server.endpoint_url).put_object(
            Bucket=deployment_bucket, Key=code_key, Body=arm64_package.artifact.read_bytes()
        )
        archive_key = template["Resources"]["CompactLambdaFunction"]["Properties"]["Code"]["S3Key"]
        aws_client("s3", server.endpoint_url).put_object(
            Bucket=deployment_bucket, Key=archive_key, Body=archive_package.artifact.read_bytes()
        )
        cloudformation.update_stack(
            StackName=stack,
            TemplateBody=json.dumps(_without_unsupported(template)),
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        yield server, cloudformation, stack


# Resource types moto 5.2.5's CloudFormation cannot create (it fails the whole stack on an
# output that refers to one). They are checked on the template above, not deployed in moto.
MOTO_UNSUPPORTED_TYPES = {"AWS::Lambda::Url", "AWS::Glue::Database", "AWS::Glue::Table"}


def _without_unsupported(template: dict) -> dict:
    template = json.loads(json.dumps(template))
    dropped = {name for name, r in template["Resources"].items() if r["Type"] in MOTO_UNSUPPORTED_TYPES}
    for name in dropped:
        del template["Resources"][name]
    template["Outputs"] = {
        key: output
        for key, output in template.get("Outputs", {}).items()
        if not any(name in json.dumps(output) for name in dropped)
    }
    return template


def _output(cloudformation, stack: str, key: str) -> str:
    outputs = cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    return next(o["OutputValue"] for o in outputs if o["OutputKey"] == key)


def test_stack_deploys_in_moto(deployed):
    server, cloudformation, stack = deployed
    assert cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    assert _output(cloudformation, stack, "FramesBucketName") == NAMES.bucket
    assert _output(cloudformation, stack, "ResultsTableName") == NAMES.table
    assert _output(cloudformation, stack, "ModelUri") == f"s3://{NAMES.bucket}/{NAMES.models_prefix}v1/"


def test_live_queues_table_and_bucket_encryption(deployed):
    server = deployed[0]
    sqs = aws_client("sqs", server.endpoint_url)
    queue_url = sqs.get_queue_url(QueueName=NAMES.queue)["QueueUrl"]
    dlq_url = sqs.get_queue_url(QueueName=NAMES.dead_letter_queue)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": topology.MAX_RECEIVE_COUNT,
    }
    assert int(attributes["VisibilityTimeout"]) == 360

    table = aws_client("dynamodb", server.endpoint_url).describe_table(TableName=NAMES.table)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert [k["AttributeName"] for k in table["KeySchema"]] == [
        topology.TABLE_PARTITION_KEY,
        topology.TABLE_SORT_KEY,
    ]
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == topology.CAMERA_INDEX
    assert [k["AttributeName"] for k in index["KeySchema"]] == [
        topology.CAMERA_INDEX_PARTITION_KEY,
        topology.CAMERA_INDEX_SORT_KEY,
    ]

    encryption = aws_client("s3", server.endpoint_url).get_bucket_encryption(Bucket=NAMES.bucket)
    (rule,) = encryption["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"


def test_live_function_runs_our_artifact_from_the_queue(deployed, arm64_package):
    server = deployed[0]
    lambda_client = aws_client("lambda", server.endpoint_url)
    function = lambda_client.get_function(FunctionName=f"camsort-{STAGE}-classify")["Configuration"]
    # The deployed code is byte-for-byte the artifact infra/deploy/package.py built.
    digest = base64.b64encode(hashlib.sha256(arm64_package.artifact.read_bytes()).digest()).decode()
    assert function["CodeSha256"] == digest
    assert function["CodeSize"] == arm64_package.artifact.stat().st_size
    assert function["Handler"] == "functions.handler.lambda_handler"
    assert function["Environment"]["Variables"][env.RESULTS_TABLE] == NAMES.table

    queue_arn = f"arn:aws:sqs:us-east-1:123456789012:{NAMES.queue}"
    mappings = lambda_client.list_event_source_mappings()["EventSourceMappings"]
    (mapping,) = [m for m in mappings if m["FunctionArn"] == function["FunctionArn"]]
    assert mapping["EventSourceArn"] == queue_arn
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == 10


def test_live_role_policy_resolves_to_the_stack_resources(deployed):
    server = deployed[0]
    iam = aws_client("iam", server.endpoint_url)
    role = f"camsort-{STAGE}-us-east-1-lambdaRole"
    (policy_name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"]
    if isinstance(document, str):
        # moto stores an inline policy created by CloudFormation as the Python repr of the
        # resolved document (single quotes), which boto3 cannot decode as JSON.
        document = ast.literal_eval(document)
    table_arn = aws_client("dynamodb", server.endpoint_url).describe_table(TableName=NAMES.table)["Table"][
        "TableArn"
    ]
    granted = policy.grants(document["Statement"])
    data = {
        (a, r) for a, r in granted if not a.startswith(FRAMEWORK_ACTIONS) and a not in QUEUE_CONSUME_ACTIONS
    }
    # CloudFormation resolved the role to the same ARNs infra/deploy/policy.py gives a local stack.
    region, account = table_arn.split(":")[3:5]
    local = policy.local_target(
        NAMES, model_uri=f"s3://{NAMES.bucket}/{NAMES.models_prefix}v1/", region=region, account_id=account
    )
    assert data == policy.grants(policy.statements(policy.function_permissions(), local))
    queue = json.dumps(f"arn:aws:sqs:us-east-1:123456789012:{NAMES.queue}")
    assert {(a, r) for a, r in granted if a.startswith("sqs:")} == {(a, queue) for a in QUEUE_CONSUME_ACTIONS}


def _api_notification(cloudformation_notification: dict, queue_arn: str) -> dict:
    """CloudFormation's NotificationConfiguration in the shape of S3's API."""
    return {
        "QueueConfigurations": [
            {
                "QueueArn": queue_arn,
                "Events": [rule["Event"]],
                "Filter": {"Key": {"FilterRules": rule["Filter"]["S3Key"]["Rules"]}},
            }
            for rule in cloudformation_notification["QueueConfigurations"]
        ]
    }


def test_notification_rules_route_exactly_the_frames(deployed, resources):
    # moto's CloudFormation ignores NotificationConfiguration, so the template's rules are put
    # on the deployed bucket through the S3 API, then exercised with real uploads.
    server = deployed[0]
    s3, sqs = aws_client("s3", server.endpoint_url), aws_client("sqs", server.endpoint_url)
    queue_url = sqs.get_queue_url(QueueName=NAMES.queue)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    # moto's SQS hands new messages to an enabled event source mapping and tries to run the
    # function (in Docker); pause the mapping, as an operator would, to read the queue directly.
    lambda_client = aws_client("lambda", server.endpoint_url)
    for mapping in lambda_client.list_event_source_mappings()["EventSourceMappings"]:
        lambda_client.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    notification = props(resources, "FramesBucket")["NotificationConfiguration"]
    s3.put_bucket_notification_configuration(
        Bucket=NAMES.bucket, NotificationConfiguration=_api_notification(notification, queue_arn)
    )
    # Every name under the prefix, whatever its extension or case: the function decides.
    frames = [
        f"{NAMES.frames_prefix}cam-1/a{suffix}"
        for suffix in (".jpg", ".Jpeg", ".JpG", ".PNG", ".jpeg", "", ".txt")
    ]
    ignored = [f"{NAMES.models_prefix}v1/preview.jpg"]  # outside the frames prefix
    for key in frames + ignored:
        s3.put_object(Bucket=NAMES.bucket, Key=key, Body=b"frame bytes")
    notified = []
    # moto delivers notifications during put_object: drain the queue until it is empty.
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not batch:
            break
        for message in batch:
            body = json.loads(message["Body"])
            # Keys in S3 events are URL-encoded (moto even encodes "/").
            notified += [unquote_plus(record["s3"]["object"]["key"]) for record in body.get("Records", [])]
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    assert sorted(notified) == sorted(frames)
