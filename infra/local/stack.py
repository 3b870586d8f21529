"""The deployed topology, built on a local endpoint (moto's server on 127.0.0.1).

serverless.yml deploys: a frames bucket whose ObjectCreated notifications (one rule: the
frames prefix, no suffix filter) go to an SQS queue; the queue redrives to a dead-letter queue after
``MAX_RECEIVE_COUNT`` receives; its visibility timeout is ``VISIBILITY_TIMEOUT_FACTOR`` x the
function timeout; the function writes to a DynamoDB results table with the ``by_camera`` GSI.
This module builds exactly that from :mod:`infra.deploy.topology`, so the two cannot drift.

What moto's server does with it (checked by tests/e2e/test_local_system.py, moto 5.2.5):

* IAM is enforced once the stack exists (see :func:`create_local_stack` and infra/local/iam.py).

* S3 -> SQS notifications are sent on PutObject, honouring the prefix rule (and suffix rules
  case-sensitively, as S3 does, which is why there are none). Keys are URL-encoded
  (``quote_plus``).
* Like S3, configuring the notification sends one ``s3:TestEvent`` message to the queue.
* Events carry no ``sequencer`` and no ``versionId`` (tests inject crafted bodies for those).
* The queue's RedrivePolicy is applied: a message received ``maxReceiveCount`` times and
  not deleted moves to the DLQ on the next receive, and the visibility timeout is honoured.
  So the local worker does not reimplement redrive: it behaves like Lambda and leaves it to SQS.
* The queue policy allowing S3 to send is stored but not enforced.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.exceptions import ClientError

from functions.errors import ConfigurationError
from infra.deploy.topology import (
    CAMERA_INDEX,
    CAMERA_INDEX_PARTITION_KEY,
    CAMERA_INDEX_SORT_KEY,
    EVENT_DETAIL_TYPE,
    EVENT_SOURCE,
    HEALTH_EVENT_DETAIL_TYPE,
    MAX_RECEIVE_COUNT,
    NOTIFICATION_EVENTS,
    REVIEW_PARTITION_KEY,
    REVIEW_SORT_KEY,
    REVIEW_TTL_ATTRIBUTE,
    STATE_PARTITION_KEY,
    STATE_SORT_KEY,
    TABLE_PARTITION_KEY,
    TABLE_SORT_KEY,
    VISIBILITY_TIMEOUT_FACTOR,
    StackNames,
    notification_filter_rules,
)
from infra.local.moto_server import ADMIN_USER, LOCAL_AWS_ENV, enforce_iam

log = logging.getLogger(__name__)

DEFAULT_REGION = LOCAL_AWS_ENV["AWS_DEFAULT_REGION"]
# serverless.yml's noncurrentVersionDays default.
NONCURRENT_VERSION_DAYS = 30


@dataclass(frozen=True)
class LocalStack:
    """Where the resources of one local stack live."""

    endpoint_url: str
    region: str
    names: StackNames
    queue_url: str
    queue_arn: str
    dead_letter_queue_url: str
    dead_letter_queue_arn: str
    function_timeout_s: int
    visibility_timeout_s: int
    events_queue_url: str = ""

    @property
    def health_events_queue_url(self) -> str:
        """Where the bus delivers the camera health changes (create_state_resources)."""
        return self.client("sqs").get_queue_url(QueueName=self.names.health_events_queue)["QueueUrl"]

    def client(self, service: str):
        """A boto3 client for this stack's endpoint, as the local admin (infra/local/moto_server.py)."""
        return local_client(service, self.endpoint_url, self.region)


def local_client(service: str, endpoint_url: str, region: str = DEFAULT_REGION, config=None):
    # Explicit credentials so the caller's environment (or a real AWS profile) never leaks
    # into requests meant for the local endpoint.
    return boto3.session.Session(
        aws_access_key_id=LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=region,
    ).client(service, endpoint_url=endpoint_url, config=config)


def has_local_admin(endpoint_url: str, region: str = DEFAULT_REGION) -> bool:
    """Whether the server knows the local admin's key (infra/local/moto_server.py seeds it)."""
    iam = local_client("iam", endpoint_url, region)
    try:
        keys = iam.list_access_keys(UserName=ADMIN_USER)["AccessKeyMetadata"]
    except ClientError:
        return False
    return any(key["AccessKeyId"] == LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"] for key in keys)


def visibility_timeout_for(function_timeout_s: int) -> int:
    return VISIBILITY_TIMEOUT_FACTOR * function_timeout_s


def notification_rules(queue_arn: str, frames_prefix: str) -> list[dict]:
    """The one queue configuration: every object created under the frames prefix."""
    return [
        {
            "Id": "frames",
            "QueueArn": queue_arn,
            "Events": list(NOTIFICATION_EVENTS),
            "Filter": {"Key": {"FilterRules": notification_filter_rules(frames_prefix)}},
        }
    ]


def create_local_stack(
    endpoint_url: str,
    names: StackNames = StackNames(),  # noqa: B008 - frozen dataclass, safe as a default
    *,
    function_timeout_s: int = 30,
    region: str = DEFAULT_REGION,
    enforce: bool = True,
) -> LocalStack:
    """Create bucket, queue + DLQ, S3 -> SQS notification and results table on ``endpoint_url``.

    The resources are created by the local admin; then, with ``enforce``, moto's IAM checks
    are turned on for the whole server, so the function (which the worker runs under its own
    role, infra/local/iam.py) is refused what its role does not allow. The admin keeps working.
    """
    if int(function_timeout_s) != function_timeout_s or function_timeout_s < 1:
        raise ValueError(
            f"function_timeout_s must be a whole number of seconds >= 1, got {function_timeout_s}"
        )
    s3 = local_client("s3", endpoint_url, region)
    sqs = local_client("sqs", endpoint_url, region)
    dynamodb = local_client("dynamodb", endpoint_url, region)

    _create_frames_bucket(s3, names, region, endpoint_url)
    visibility_timeout_s = visibility_timeout_for(int(function_timeout_s))
    queues = _create_queues(sqs, names, visibility_timeout_s)
    s3.put_bucket_notification_configuration(
        Bucket=names.bucket,
        NotificationConfiguration={
            "QueueConfigurations": notification_rules(queues["queue_arn"], names.frames_prefix)
        },
    )
    _create_results_table(dynamodb, names.table)
    create_review_table(dynamodb, names.review_table)
    events_queue_url = create_state_resources(endpoint_url, names, region=region)
    if enforce:
        _enforce_iam(endpoint_url, region)
    return LocalStack(
        endpoint_url=endpoint_url,
        events_queue_url=events_queue_url,
        region=region,
        names=names,
        **queues,
        function_timeout_s=int(function_timeout_s),
        visibility_timeout_s=visibility_timeout_s,
    )


def _create_frames_bucket(s3, names: StackNames, region: str, endpoint_url: str) -> None:
    """As serverless.yml's FramesBucket: versioned (an overwrite is a new frame with its own
    version), encrypted, private, overwritten versions expiring. Its TLS-only bucket policy
    is left out: the local endpoint is plain HTTP on 127.0.0.1."""
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=names.bucket)
        else:
            s3.create_bucket(Bucket=names.bucket, CreateBucketConfiguration={"LocationConstraint": region})
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise ConfigurationError(
                f"{endpoint_url}: bucket {names.bucket} already exists, so a stack with these names is already "
                "there; use another stage name (camsort demo --stage ...) or a fresh endpoint"
            ) from exc
        raise
    s3.put_bucket_versioning(Bucket=names.bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(
        Bucket=names.bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_public_access_block(
        Bucket=names.bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_lifecycle_configuration(
        Bucket=names.bucket,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "ExpireOverwrittenFrames",
                    "Status": "Enabled",
                    "Filter": {"Prefix": names.frames_prefix},
                    "NoncurrentVersionExpiration": {"NoncurrentDays": NONCURRENT_VERSION_DAYS},
                }
            ]
        },
    )


def _create_queues(sqs, names: StackNames, visibility_timeout_s: int) -> dict[str, str]:
    """The frames queue with its DLQ and the policy that lets the bucket send to it."""
    dead_letter_queue_url = sqs.create_queue(
        QueueName=names.dead_letter_queue,
        # 14 days, the maximum, as a DLQ should keep failures long enough to be looked at.
        Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600), "SqsManagedSseEnabled": "true"},
    )["QueueUrl"]
    dead_letter_queue_arn = _queue_arn(sqs, dead_letter_queue_url)
    queue_url = sqs.create_queue(
        QueueName=names.queue,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout_s),
            "MessageRetentionPeriod": str(4 * 24 * 3600),
            "SqsManagedSseEnabled": "true",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dead_letter_queue_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
            ),
        },
    )["QueueUrl"]
    queue_arn = _queue_arn(sqs, queue_url)
    sqs.set_queue_attributes(
        QueueUrl=queue_url, Attributes={"Policy": json.dumps(_queue_policy(queue_arn, names.bucket))}
    )
    return {
        "queue_url": queue_url,
        "queue_arn": queue_arn,
        "dead_letter_queue_url": dead_letter_queue_url,
        "dead_letter_queue_arn": dead_letter_queue_arn,
    }


def _create_results_table(dynamodb, table: str) -> None:
    """The results table with its camera/time index, point-in-time recovery on (as deployed)."""
    dynamodb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": TABLE_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": TABLE_SORT_KEY, "AttributeType": "S"},
            {"AttributeName": CAMERA_INDEX_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": CAMERA_INDEX_SORT_KEY, "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": TABLE_PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": TABLE_SORT_KEY, "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": CAMERA_INDEX,
                "KeySchema": [
                    {"AttributeName": CAMERA_INDEX_PARTITION_KEY, "KeyType": "HASH"},
                    {"AttributeName": CAMERA_INDEX_SORT_KEY, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        # exportResults reads it (functions/archive/results_export.py): results -> Parquet on S3.
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    dynamodb.update_continuous_backups(
        TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
    )
    dynamodb.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def _enforce_iam(endpoint_url: str, region: str) -> None:
    """Turn moto's IAM checks on, but only on a server camsort started (it knows the admin key)."""
    if has_local_admin(endpoint_url, region):
        enforce_iam(endpoint_url)
    else:
        log.warning(
            "%s: no %s user with the local admin key (a moto server camsort did not start); "
            "IAM is NOT enforced there. Let camsort start moto (no --endpoint-url) to run under the role.",
            endpoint_url,
            ADMIN_USER,
        )


def create_keyed_table(dynamodb, table: str, partition_key: str, sort_key: str) -> None:
    """An on-demand table keyed by two strings (partition + sort), as serverless.yml declares them."""
    dynamodb.create_table(
        TableName=table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": partition_key, "AttributeType": "S"},
            {"AttributeName": sort_key, "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": partition_key, "KeyType": "HASH"},
            {"AttributeName": sort_key, "KeyType": "RANGE"},
        ],
    )


def create_review_table(dynamodb, table: str) -> None:
    """The review queue table, as serverless.yml's ReviewTable (keys, TTL on quota counters)."""
    create_keyed_table(dynamodb, table, REVIEW_PARTITION_KEY, REVIEW_SORT_KEY)
    dynamodb.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": REVIEW_TTL_ATTRIBUTE},
    )


def create_state_resources(endpoint_url: str, names: StackNames, *, region: str = DEFAULT_REGION) -> str:
    """State table, event bus, and rules delivering the state changes to a queue (returns its URL)
    and the camera health changes to another (``names.health_events_queue``).

    The queues stand in for whatever subscribes on AWS (moto's EventBridge delivers PutEvents
    entries to SQS targets), so the tests and the demo read exactly what a subscriber gets.
    """
    dynamodb = local_client("dynamodb", endpoint_url, region)
    events = local_client("events", endpoint_url, region)
    sqs = local_client("sqs", endpoint_url, region)
    create_keyed_table(dynamodb, names.state_table, STATE_PARTITION_KEY, STATE_SORT_KEY)
    events.create_event_bus(Name=names.event_bus)
    queues = {}
    for rule, detail_type, queue in (
        ("camsort-state-changed", EVENT_DETAIL_TYPE, names.events_queue),
        ("camsort-camera-health-changed", HEALTH_EVENT_DETAIL_TYPE, names.health_events_queue),
    ):
        queues[queue] = sqs.create_queue(QueueName=queue)["QueueUrl"]
        events.put_rule(
            Name=rule,
            EventBusName=names.event_bus,
            EventPattern=json.dumps({"source": [EVENT_SOURCE], "detail-type": [detail_type]}),
            State="ENABLED",
        )
        events.put_targets(
            Rule=rule,
            EventBusName=names.event_bus,
            Targets=[{"Id": "events-queue", "Arn": _queue_arn(sqs, queues[queue])}],
        )
    queue_url = queues[names.events_queue]
    dynamodb.get_waiter("table_exists").wait(
        TableName=names.state_table, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    return queue_url


# model URI -> sha256 of the model.onnx upload_model put there: the deployment's pin, as the
# upload step hands it to `serverless deploy --param=modelSha256=...` on AWS.
_PINS: dict[str, str] = {}


def upload_model(stack: LocalStack, model_dir: Path, *, version: str) -> str:
    """Put model.onnx + manifest.json under the models prefix; returns the ``s3://`` model URI.

    The function then loads the model from S3 exactly as it does on AWS, pinned to the sha256
    of the model uploaded here (:func:`pinned_sha256`; the worker sets CAMSORT_MODEL_SHA256).
    """
    from infra.deploy.model_upload import upload_model_dir

    prefix = f"{stack.names.models_prefix}{version}/"
    upload = upload_model_dir(stack.client("s3"), model_dir, stack.names.bucket, prefix)
    _PINS[upload.uri] = upload.sha256
    return upload.uri


def pinned_sha256(model_uri: str) -> str | None:
    """The sha256 :func:`upload_model` pinned for ``model_uri`` in this process, if any."""
    return _PINS.get(model_uri)


def _queue_arn(sqs, queue_url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _queue_policy(queue_arn: str, bucket: str) -> dict:
    # The same statement serverless.yml needs: only this bucket may send notifications.
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowFramesBucketNotifications",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {
                    "ArnEquals": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"},
                    "StringEquals": {"aws:SourceAccount": queue_arn.split(":")[4]},
                },
            }
        ],
    }
