"""Expected failures -> one sentence (by type, never by message); anything else stays a bug."""

from __future__ import annotations

import click
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError
from click.testing import CliRunner

from camsort.cli import CamsortGroup
from camsort.failures import explain
from functions.errors import StorageError, TransientError


def _client_error(code: str, operation: str = "GetQueueUrl", **details: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "said AWS.", **details}}, operation)


def test_nothing_answering_at_a_local_endpoint_says_start_the_demo():
    sentence = explain(EndpointConnectionError(endpoint_url="http://127.0.0.1:4566/"))
    assert sentence and sentence.startswith(
        "nothing answers at http://127.0.0.1:4566: the local server is not running"
    )
    assert "camsort demo --keep-running" in sentence
    remote = explain(EndpointConnectionError(endpoint_url="https://sqs.eu-west-1.amazonaws.com/"))
    assert remote and remote.startswith(
        "cannot reach https://sqs.eu-west-1.amazonaws.com/: check the network"
    )


def test_a_project_error_over_a_dead_connection_says_the_connection_not_retried():
    try:
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:4566/")
    except EndpointConnectionError as cause:
        error = TransientError(
            "camsort-results-x: DynamoDB Query failed transiently (...); it will be retried"
        )
        error.__cause__ = cause
    sentence = explain(error)
    assert sentence and "nothing answers at http://127.0.0.1:4566" in sentence and "retried" not in sentence


def test_a_project_error_keeps_its_own_message():
    error = StorageError("s3://b/models/v1/model.onnx: upload failed (NoSuchBucket); check --bucket")
    error.__cause__ = _client_error("NoSuchBucket", "PutObject")
    assert explain(error) == str(error)


def test_credentials_region_and_refusals():
    assert "no usable AWS credentials" in (explain(NoCredentialsError()) or "")
    assert "pass --region" in (explain(NoRegionError()) or "")
    refused = explain(_client_error("InvalidClientTokenId", "GetCallerIdentity"))
    assert refused and refused.startswith(
        "AWS refused the credentials (InvalidClientTokenId on GetCallerIdentity"
    )
    denied = explain(_client_error("AccessDenied", "GetObject", BucketName="camsort-frames-prod"))
    assert (
        denied
        == "access denied to GetObject on camsort-frames-prod (said AWS): these credentials lack that permission"
    )
    missing = explain(_client_error("NoSuchBucket", "ListObjectVersions", BucketName="camsort-frames-x"))
    assert missing and missing.startswith("AWS refused ListObjectVersions on camsort-frames-x: NoSuchBucket")


def test_a_bug_is_no_expected_failure():
    assert explain(ValueError("a bug")) is None
    assert explain(KeyError("endpoint_url")) is None


def _group() -> click.Group:
    @click.group(cls=CamsortGroup)
    @click.option("--debug", is_flag=True)
    def group(debug: bool) -> None:
        pass

    @group.command()
    @click.argument("what")
    def fail(what: str) -> None:
        raise {
            "expected": StorageError("s3://b/k: no such bucket; check --bucket"),
            "bug": ValueError("oops"),
        }[what]

    return group


def test_the_top_level_prints_one_line_for_expected_failures_and_keeps_bugs():
    runner = CliRunner()
    expected = runner.invoke(_group(), ["fail", "expected"])
    assert (expected.exit_code, expected.output) == (1, "Error: s3://b/k: no such bucket; check --bucket\n")
    bug = runner.invoke(_group(), ["fail", "bug"])
    assert isinstance(bug.exception, ValueError)  # raised through: Python prints its traceback
    debug = runner.invoke(_group(), ["--debug", "fail", "expected"])
    assert isinstance(debug.exception, StorageError)


@pytest.mark.parametrize("command", [["--help"], ["results", "--help"]])
def test_help_is_not_a_failure(command):
    from camsort.cli import main

    assert CliRunner().invoke(main, command).exit_code == 0
