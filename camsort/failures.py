"""Expected failures as one sentence: what `camsort` prints instead of a traceback.

The adapters (functions/, infra/) turn the AWS errors they meet into the project's typed errors,
whose message names the table, bucket, queue or key and says what to do. What reaches the top
unmapped, or under such an error, is classified here by type (never by message text): no
server at the endpoint, refused or missing credentials, no region, or AWS refusing a call.
Anything else returns None: a bug, shown with its traceback.
"""

from __future__ import annotations

from urllib.parse import urlsplit

# Codes AWS (and moto with IAM enforcement) answer when the credentials themselves are refused.
_BAD_CREDENTIALS = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "ExpiredTokenException",
        "AuthFailure",
    }
)
_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "AuthorizationError"})
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def explain(error: BaseException) -> str | None:
    """One sentence for an expected failure; None for a bug (or a click error, printed by click)."""
    from functions.errors import CamsortError

    if isinstance(error, CamsortError):
        # A project error raised over a dead connection says "it will be retried": in a command
        # nothing retries, so the connection itself is the one thing to say.
        cause = error.__cause__
        return (_unanswerable(cause) if cause is not None else None) or str(error)
    return _unanswerable(error) or _refused(error)


def _unanswerable(error: BaseException) -> str | None:
    """No server, no credentials, no region: nothing any single call could have done better."""
    from botocore import exceptions as boto

    if isinstance(error, boto.ConnectionError | boto.HTTPClientError):
        return _unreachable(str(getattr(error, "kwargs", {}).get("endpoint_url") or ""))
    if isinstance(error, boto.NoRegionError):
        return "no AWS region given: pass --region or set AWS_DEFAULT_REGION (or --endpoint-url for a local server)"
    if isinstance(
        error, boto.NoCredentialsError | boto.PartialCredentialsError | boto.CredentialRetrievalError
    ):
        return (
            f"no usable AWS credentials ({error}): set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or pass --endpoint-url for a local server"
        )
    if isinstance(error, boto.ProfileNotFound):
        return f"{error}: check AWS_PROFILE (aws configure list-profiles)"
    if isinstance(error, boto.ClientError) and _code(error) in _BAD_CREDENTIALS:
        return (
            f"AWS refused the credentials ({_code(error)} on {error.operation_name}); check AWS_PROFILE or "
            "the access key, or pass --endpoint-url for a local server"
        )
    return None


def _code(error) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _unreachable(endpoint_url: str) -> str:
    parts = urlsplit(endpoint_url)
    if parts.hostname in _LOCAL_HOSTS:
        return (
            f"nothing answers at {parts.scheme}://{parts.netloc}: the local server is not running; "
            "start one with `camsort demo --keep-running` (commands then find it without options), "
            "or check --endpoint-url"
        )
    return f"cannot reach {endpoint_url or 'AWS'}: check the network connection, --region and --endpoint-url"


def _refused(error: BaseException) -> str | None:
    """AWS answered no to a call no adapter mapped: the call, the resource if AWS named it, the code."""
    from botocore.exceptions import ClientError

    if not isinstance(error, ClientError):
        return None
    details = error.response.get("Error", {})
    code, message = _code(error), str(details.get("Message", "")).rstrip(".")
    named = " ".join(str(details[key]) for key in ("BucketName", "Key", "QueueName") if details.get(key))
    subject = f"{error.operation_name} on {named}" if named else error.operation_name
    if code in _DENIED:
        return f"access denied to {subject} ({message}): these credentials lack that permission"
    return (
        f"AWS refused {subject}: {code} ({message}); check the names it uses (--stage, --table, "
        "--bucket) and --region / --endpoint-url"
    )
