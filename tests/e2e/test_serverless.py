"""serverless.yml, packaged by the real Serverless Framework, linted, and deployed to moto.

``serverless package --stage test`` runs offline (dummy credentials, telemetry and
notifications off, HTTP(S) proxies pointing at a closed local port, and a timeout), with the
real arm64 artifact from ``infra/package.py``. The CloudFormation it writes is

* linted by cfn-lint;
* checked against ``infra/topology.py`` (names, keys, GSI, redrive, suffix filters) — the
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
from pathlib import Path
from urllib.parse import unquote_plus

import pytest
import yaml

from functions import env
from infra import topology
from infra.moto_server import MotoServer
from infra.package import PROJECT_ROOT
from tests.fixtures.aws import aws_client

pytestmark = pytest.mark.e2e

STAGE = "test"
NAMES = topology.StackNames.for_stage(STAGE)
SERVERLESS = PROJECT_ROOT / "node_modules" / ".bin" / "serverless"
# Lambda gives one vCPU of credit per 1,769 MB.
MB_PER_VCPU = 1769
DATA_ACTION_PREFIXES = ("s3:", "dynamodb:", "sqs:", "events:")
EXPECTED_DATA_ACTIONS = {
    "events:PutEvents",
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObjectTagging",
    "s3:PutObjectVersionTagging",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
}
# Serverless 3.40's config schema predates the python3.12 runtime (Lambda has it; the
# Framework passes it through with this warning). Any other warning fails the test.
KNOWN_CONFIG_WARNING = "at 'provider.runtime': must be equal to one of the allowed values"


def run_serverless_package(service_dir: Path, *args: str) -> subprocess.CompletedProcess:
    home = service_dir / "home"
    home.mkdir(exist_ok=True)
    environment = {
        "PATH": f"{Path(shutil.which('node') or '/usr/bin/node').parent}:/usr/bin:/bin",
        "HOME": str(home),  # the Framework's ~/.serverlessrc goes here, not into the user's home
        "CI": "1",  # never prompt
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "SLS_TELEMETRY_DISABLED": "1",
        "SLS_NOTIFICATIONS_MODE": "off",
        # Any attempt to reach the internet fails at once instead of hanging.
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9",
        "https_proxy": "http://127.0.0.1:9",
    }
    try:
        return subprocess.run(
            [str(SERVERLESS), "package", "--stage", STAGE, *args],
            cwd=service_dir,
            env=environment,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(
            f"serverless package did not finish within {error.timeout}s: is it waiting on the network?"
        )


def packaged_service(tmp_path: Path, artifact: Path, *args: str) -> tuple[subprocess.CompletedProcess, Path]:
    """A copy of serverless.yml + the artifact at the path it names, packaged; returns (run, .serverless)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROJECT_ROOT / "serverless.yml", tmp_path / "serverless.yml")
    (tmp_path / "build").mkdir()
    shutil.copyfile(artifact, tmp_path / "build" / artifact.name)
    result = run_serverless_package(tmp_path, *args)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result, tmp_path / ".serverless"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory, arm64_package):
    return packaged_service(tmp_path_factory.mktemp("sls") / "service", arm64_package.artifact)


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


def test_serverless_packages_offline_with_only_the_known_schema_warning(packaged):
    result, out_dir = packaged
    output = result.stdout + result.stderr
    assert "Service packaged" in output
    assert {p.name for p in out_dir.glob("*.json")} >= {
        "cloudformation-template-create-stack.json",
        "cloudformation-template-update-stack.json",
    }
    config_errors = [line for line in output.splitlines() if line.strip().startswith("at '")]
    assert [line for line in config_errors if KNOWN_CONFIG_WARNING not in line] == []


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
        ("ClassifyEventSourceMappingSQSFramesQueue", "AWS::Lambda::EventSourceMapping"),
        ("ClassifyLambdaFunction", "AWS::Lambda::Function"),
        ("ClassifyLogGroup", "AWS::Logs::LogGroup"),
        ("DeadLetterQueueAlarm", "AWS::CloudWatch::Alarm"),
        ("EventBus", "AWS::Events::EventBus"),
        ("FramesBucket", "AWS::S3::Bucket"),
        ("FramesBucketPolicy", "AWS::S3::BucketPolicy"),
        ("FramesDeadLetterQueue", "AWS::SQS::Queue"),
        ("FramesQueue", "AWS::SQS::Queue"),
        ("FramesQueuePolicy", "AWS::SQS::QueuePolicy"),
        ("IamRoleLambdaExecution", "AWS::IAM::Role"),
        ("ResultsTable", "AWS::DynamoDB::Table"),
        ("ServerlessDeploymentBucket", "AWS::S3::Bucket"),
        ("ServerlessDeploymentBucketPolicy", "AWS::S3::BucketPolicy"),
        ("StateTable", "AWS::DynamoDB::Table"),
    ]
    assert len(of_type(resources, "AWS::Lambda::Version")) == 1


# --- against infra/topology.py (no drift from the local moto stack) ---------------------------


def test_names_match_topology(resources):
    assert props(resources, "FramesBucket")["BucketName"] == NAMES.bucket
    assert props(resources, "FramesQueue")["QueueName"] == NAMES.queue
    assert props(resources, "FramesDeadLetterQueue")["QueueName"] == NAMES.dead_letter_queue
    assert props(resources, "ResultsTable")["TableName"] == NAMES.table
    assert props(resources, "StateTable")["TableName"] == NAMES.state_table
    assert props(resources, "EventBus")["Name"] == NAMES.event_bus


def test_notification_sends_frames_under_the_prefix_with_each_suffix_to_the_queue(resources):
    bucket = resources["FramesBucket"]
    # S3 checks the destination when the notification is attached: the policy must exist first.
    assert "FramesQueuePolicy" in bucket["DependsOn"]
    rules = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert "LambdaConfigurations" not in bucket["Properties"]["NotificationConfiguration"]
    assert [rule["Event"] for rule in rules] == list(topology.NOTIFICATION_EVENTS) * len(
        topology.FRAME_SUFFIXES
    )
    assert all(rule["Queue"] == {"Fn::GetAtt": ["FramesQueue", "Arn"]} for rule in rules)
    filters = [{r["Name"]: r["Value"] for r in rule["Filter"]["S3Key"]["Rules"]} for rule in rules]
    assert filters == [
        {"prefix": NAMES.frames_prefix, "suffix": suffix} for suffix in topology.FRAME_SUFFIXES
    ]


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
    # createBucket=false leaves both out (existing bucket; see docs/readme/deploy.md).
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
    assert (PROJECT_ROOT / "functions" / "handler.py").is_file()
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
    (mapping,) = of_type(resources, "AWS::Lambda::EventSourceMapping").values()
    properties = mapping["Properties"]
    assert properties["EventSourceArn"] == {"Fn::GetAtt": ["FramesQueue", "Arn"]}
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


def test_iam_statements_name_their_resources(resources):
    statements = _statements(resources)
    data_actions = set()
    frames_objects = f"arn:aws:s3:::{NAMES.bucket}/{NAMES.frames_prefix}*"
    model_objects = {
        f"arn:aws:s3:::{NAMES.bucket}/{NAMES.models_prefix}v1/model.onnx",
        f"arn:aws:s3:::{NAMES.bucket}/{NAMES.models_prefix}v1/manifest.json",
    }
    table_arn = {"Fn::GetAtt": ["ResultsTable", "Arn"]}
    state_arn = {"Fn::GetAtt": ["StateTable", "Arn"]}
    index_arn = {"Fn::Join": ["/", [table_arn, "index", topology.CAMERA_INDEX]]}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        actions = _as_list(statement["Action"])
        assert not [a for a in actions if "*" in a], statement
        resources_of = _as_list(statement["Resource"])
        assert "*" not in resources_of, statement
        for action in actions:
            if not action.startswith(DATA_ACTION_PREFIXES):
                assert action.startswith("logs:"), statement  # the Framework's log-group statements
                continue
            data_actions.add(action)
            service = action.split(":")[0]
            if service == "s3":
                allowed = {frames_objects} | (model_objects if action == "s3:GetObject" else set())
                assert all(r in allowed for r in resources_of), statement
            elif service == "dynamodb":
                allowed = [table_arn, index_arn] if action == "dynamodb:Query" else [table_arn, state_arn]
                assert all(r in allowed for r in resources_of), statement
            elif service == "events":
                assert resources_of == [{"Fn::GetAtt": ["EventBus", "Arn"]}], statement
            else:
                assert resources_of == [{"Fn::GetAtt": ["FramesQueue", "Arn"]}], statement
    assert data_actions == EXPECTED_DATA_ACTIONS
    # Model objects are readable, not taggable; frames are readable and taggable.
    model_statement = next(s for s in statements if s.get("Sid") == "ReadModel")
    assert _as_list(model_statement["Action"]) == ["s3:GetObject"]
    assert set(_as_list(model_statement["Resource"])) == model_objects


def test_existing_bucket_variant_leaves_the_bucket_out(tmp_path, arm64_package):
    _, out_dir = packaged_service(tmp_path / "service", arm64_package.artifact, "--param=createBucket=false")
    path = out_dir / "cloudformation-template-update-stack.json"
    template = json.loads(path.read_text())
    assert template["Parameters"]["CreateFramesBucket"]["Default"] == "false"
    assert template["Conditions"]["CreateBucket"] == {"Fn::Equals": [{"Ref": "CreateFramesBucket"}, "true"]}
    # The queue policy and IAM still name the (existing) bucket.
    assert "FramesQueuePolicy" in template["Resources"]


# --- deployed into moto's CloudFormation -------------------------------------------------------


@pytest.fixture(scope="module")
def deployed(packaged, template, arm64_package, tmp_path_factory):
    """The stack in moto, deployed the way `serverless deploy` does it."""
    out_dir = packaged[1]
    with MotoServer(log_path=tmp_path_factory.mktemp("moto") / "moto.log") as server:
        cloudformation = aws_client("cloudformation", server.endpoint_url)
        stack = f"camsort-{STAGE}"
        cloudformation.create_stack(
            StackName=stack,
            TemplateBody=(out_dir / "cloudformation-template-create-stack.json").read_text(),
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        deployment_bucket = _output(cloudformation, stack, "ServerlessDeploymentBucketName")
        code_key = template["Resources"]["ClassifyLambdaFunction"]["Properties"]["Code"]["S3Key"]
        aws_client("s3", server.endpoint_url).put_object(
            Bucket=deployment_bucket, Key=code_key, Body=arm64_package.artifact.read_bytes()
        )
        cloudformation.update_stack(
            StackName=stack, TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_NAMED_IAM"]
        )
        yield server, cloudformation, stack


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
    # The deployed code is byte-for-byte the artifact infra/package.py built.
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
    resolved = {}
    for statement in document["Statement"]:
        for action in _as_list(statement["Action"]):
            resolved.setdefault(action, set()).update(_as_list(statement["Resource"]))
    assert resolved["dynamodb:PutItem"] == {table_arn}
    assert resolved["dynamodb:Query"] == {table_arn, f"{table_arn}/index/{topology.CAMERA_INDEX}"}
    assert resolved["sqs:DeleteMessage"] == {f"arn:aws:sqs:us-east-1:123456789012:{NAMES.queue}"}
    assert resolved["s3:PutObjectTagging"] == {f"arn:aws:s3:::{NAMES.bucket}/{NAMES.frames_prefix}*"}


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
    frames = [f"{NAMES.frames_prefix}cam-1/a{suffix}" for suffix in topology.FRAME_SUFFIXES]
    ignored = [
        f"{NAMES.frames_prefix}cam-1/notes.txt",
        f"{NAMES.models_prefix}v1/preview.jpg",  # outside the frames prefix
        f"{NAMES.frames_prefix}cam-1/mixed.Jpg",  # suffix filters are case-sensitive
    ]
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
