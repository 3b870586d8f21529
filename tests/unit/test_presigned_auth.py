"""S3's checks of presigned requests (infra/local/presigned_auth.py, post_policy.py), without a server.

URLs and forms are made by botocore's own presigners (no request is sent); one SigV4 URL is
AWS's documented example, so the verifier is held to S3's numbers, not only to botocore's.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.credentials import Credentials

from infra.local.post_policy import PostForm, check_conditions, parse_form, verify_post
from infra.local.presigned_auth import QueryRequest, S3Refusal, signature_version, verify_query

KEY_ID, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
HOST = "127.0.0.1:4566"


def lookup(access_key: str, token: str | None) -> Credentials | None:
    return Credentials(KEY_ID, SECRET, token) if access_key == KEY_ID else None


def client(version: str = "s3v4", token: str | None = None):
    session = boto3.session.Session(
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
        aws_session_token=token,
        region_name="us-east-1",
    )
    return session.client("s3", endpoint_url=f"http://{HOST}", config=Config(signature_version=version))


def incoming(url: str, method: str = "PUT", headers: dict[str, str] | None = None) -> QueryRequest:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    return QueryRequest(method, parts.netloc, parts.path, query, {"host": parts.netloc, **(headers or {})})


def refusal(call) -> S3Refusal:
    with pytest.raises(S3Refusal) as raised:
        call()
    return raised.value


def test_aws_documented_sigv4_example_verifies():
    # "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)", GET /test.txt.
    url = (
        "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )
    at = datetime(2013, 5, 24, 1, tzinfo=UTC)
    verified = verify_query(incoming(url, "GET"), lookup, at, bucket_region="us-east-1")
    assert (verified.credentials.access_key, verified.region, verified.forwarded_query) == (
        KEY_ID,
        "us-east-1",
        [],
    )
    late = refusal(lambda: verify_query(incoming(url, "GET"), lookup, at + timedelta(days=1)))
    assert (late.status, late.code, late.message) == (403, "AccessDenied", "Request has expired")
    assert late.details == {
        "X-Amz-Expires": "86400",
        "Expires": "2013-05-25T00:00:00Z",
        "ServerTime": "2013-05-25T01:00:00Z",
    }


@pytest.mark.parametrize("version", ["s3v4", "s3"])
def test_botocore_urls_verify_and_keep_their_operation_params(version):
    url = client(version, token="session-token").generate_presigned_url(
        "put_object", Params={"Bucket": "b", "Key": "frames/cam-01/a b+c.jpg", "ContentType": "image/jpeg"}
    )
    assert signature_version(parse_qsl(urlsplit(url).query)) == version
    verified = verify_query(incoming(url, headers={"content-type": "image/jpeg"}), lookup, datetime.now(UTC))
    assert verified.credentials.token == "session-token"
    kept = {name.lower() for name, _ in verified.forwarded_query}
    assert not kept & {"x-amz-signature", "signature", "awsaccesskeyid", "x-amz-security-token", "expires"}


def test_query_refusals_name_s3s_codes():
    url = client().generate_presigned_url("put_object", Params={"Bucket": "b", "Key": "k"}, ExpiresIn=60)
    now = datetime.now(UTC)
    assert refusal(lambda: verify_query(incoming(url), lookup, now, bucket_region="eu-west-1")).details == {
        "Region": "eu-west-1"
    }
    unsigned = refusal(lambda: verify_query(incoming(url, headers={"x-amz-acl": "public-read"}), lookup, now))
    assert (unsigned.code, unsigned.details) == ("AccessDenied", {"HeadersNotSigned": "x-amz-acl"})
    week = url.replace("X-Amz-Expires=60", "X-Amz-Expires=604801")
    assert (
        refusal(lambda: verify_query(incoming(week), lookup, now)).code == "AuthorizationQueryParametersError"
    )
    stranger = refusal(lambda: verify_query(incoming(url), lambda *_: None, now))
    assert (stranger.status, stranger.code) == (403, "InvalidAccessKeyId")
    got = refusal(lambda: verify_query(incoming(url, method="GET"), lookup, now))
    assert (got.status, got.code) == (403, "SignatureDoesNotMatch")
    assert got.details["CanonicalRequest"].startswith("GET\n/b/k\n")


def test_only_s3_queries_count_as_presigned():
    assert signature_version([("Action", "SendMessage")]) is None
    assert signature_version([("AWSAccessKeyId", "x"), ("Signature", "y"), ("SignatureVersion", "2")]) is None
    other = "x/20260101/us-east-1/sqs/aws4_request"
    assert signature_version([("X-Amz-Credential", other), ("X-Amz-Signature", "z")]) is None


def _form(fields: dict[str, str], content: bytes = b"jpeg", file_name: str = "f.jpg") -> PostForm:
    return PostForm({name.lower(): value for name, value in fields.items()}, file_name, content)


@pytest.mark.parametrize("version", ["s3v4", "s3"])
def test_a_botocore_post_form_verifies_with_filename_expanded(version):
    form = client(version).generate_presigned_post(
        "b",
        "frames/cam-01/${filename}",
        Fields={"Content-Type": "image/jpeg"},
        Conditions=[["starts-with", "$key", "frames/cam-01/"], {"Content-Type": "image/jpeg"}],
    )
    post = verify_post("b", _form(form["fields"], file_name="C:\\dcim\\f 1.jpg"), lookup, datetime.now(UTC))
    assert post.key == "frames/cam-01/f 1.jpg"
    tampered = {
        **form["fields"],
        "policy": base64.b64encode(b'{"expiration": "2099-01-01T00:00:00Z"}').decode(),
    }
    assert refusal(lambda: verify_post("b", _form(tampered), lookup, datetime.now(UTC))).code == (
        "SignatureDoesNotMatch"
    )


def test_post_form_refusals():
    now = datetime.now(UTC)
    assert refusal(lambda: verify_post("b", _form({"key": "k"}), lookup, now)).code == "AccessDenied"
    missing_key = refusal(lambda: verify_post("b", _form({"policy": "p", "signature": "s"}), lookup, now))
    assert (missing_key.status, missing_key.code, missing_key.details["ArgumentName"]) == (
        400,
        "InvalidArgument",
        "key",
    )


def condition_failure(conditions, fields, size=10, bucket="b") -> str | None:
    try:
        check_conditions(conditions, bucket=bucket, fields=fields, size=size)
    except S3Refusal as refused:
        return f"{refused.code}: {refused.message}"
    return None


def test_policy_conditions_as_s3_documents_them():
    key = {"key": "frames/cam-01/a.jpg"}
    starts = ["starts-with", "$key", "frames/cam-01/"]
    assert condition_failure([starts], key) is None
    assert condition_failure([starts, {"bucket": "other"}], key) == (
        'AccessDenied: Invalid according to Policy: Policy Condition failed: ["eq", "$bucket", "other"]'
    )
    assert condition_failure([["eq", "$key", "frames/cam-01/a.jpg"]], key) is None
    # Field names are case-insensitive; values are not.
    assert (
        condition_failure([starts, {"Content-Type": "image/jpeg"}], {**key, "content-type": "image/jpeg"})
        is None
    )
    assert condition_failure([starts, {"content-type": "image/JPEG"}], {**key, "content-type": "image/jpeg"})
    # A comma-separated Content-Type matches starts-with only if every listed type does.
    image = ["starts-with", "$Content-Type", "image/"]
    assert condition_failure([starts, image], {**key, "content-type": "image/jpeg,image/png"}) is None
    assert condition_failure([starts, image], {**key, "content-type": "image/jpeg,text/plain"})
    # Every field needs a condition, except the exempt ones and x-ignore-*.
    assert (
        condition_failure([starts], {**key, "x-ignore-flash": "1", "policy": "p", "x-amz-signature": "s"})
        is None
    )
    assert condition_failure([starts], {**key, "x-amz-meta-site": "north"}) == (
        "AccessDenied: Invalid according to Policy: Extra input fields: x-amz-meta-site"
    )
    assert (
        condition_failure([starts, ["starts-with", "$x-amz-meta-site", ""]], {**key, "x-amz-meta-site": "n"})
        is None
    )
    sized = [starts, ["content-length-range", 2, 5]]
    assert condition_failure(sized, key, size=5) is None
    assert condition_failure(sized, key, size=6).startswith("EntityTooLarge:")
    assert condition_failure(sized, key, size=1).startswith("EntityTooSmall:")
    assert condition_failure([["in", "$key", ["a"]]], key).startswith("InvalidPolicyDocument:")


def test_policy_document_and_expiry():
    def signed(document) -> dict[str, str]:
        from botocore.auth import HmacV1Auth

        policy = base64.b64encode(json.dumps(document).encode()).decode()
        return {"key": "k", "awsaccesskeyid": KEY_ID, "policy": policy,
                "signature": HmacV1Auth(Credentials(KEY_ID, SECRET)).sign_string(policy)}  # fmt: skip

    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    expired = signed({"expiration": "2026-12-06T11:59:59.000Z", "conditions": [{"key": "k"}]})
    assert refusal(lambda: verify_post("b", _form(expired), lookup, now)).message == (
        "Invalid according to Policy: Policy expired."
    )
    no_conditions = signed({"expiration": "2026-12-07T00:00:00Z"})
    assert (
        refusal(lambda: verify_post("b", _form(no_conditions), lookup, now)).code == "InvalidPolicyDocument"
    )


def test_the_form_ends_at_its_file_part():
    body = (
        b'--xyz\r\nContent-Disposition: form-data; name="Key"\r\n\r\nframes/cam-01/a.jpg\r\n'
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\x00bytes\r\n"
        b'--xyz\r\nContent-Disposition: form-data; name="after"\r\n\r\nignored\r\n--xyz--\r\n'
    )
    form = parse_form(body, "xyz")
    assert (form.fields, form.file_name, form.content) == (
        {"key": "frames/cam-01/a.jpg"},
        "a.jpg",
        b"\xff\xd8\x00bytes",
    )
    no_file = b'--xyz\r\nContent-Disposition: form-data; name="key"\r\n\r\nk\r\n--xyz--\r\n'
    assert refusal(lambda: parse_form(no_file, "xyz")).details == {
        "ArgumentName": "file",
        "ArgumentValue": "0",
    }
