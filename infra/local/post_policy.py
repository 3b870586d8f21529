"""S3's checks of a browser-based POST upload: the form, its policy's signature and conditions.

Browser-based POST ("Browser-Based Uploads Using POST", "Creating a POST Policy"): the form is
multipart/form-data with ``key``, ``policy`` and one file as the last part (later parts are
ignored); ``${filename}`` is expanded in every field before the policy is checked; the policy's
signature (SigV4: HMAC-SHA256 with the derived signing key; SigV2: HMAC-SHA1) is botocore's; the
policy has an ``expiration`` in the future and ``conditions`` that all hold (exact match, ``eq``,
``starts-with`` including the comma-separated Content-Type rule, ``content-length-range``,
``bucket``); and every form field except ``policy``, ``file``, the signature fields and
``x-ignore-*`` is named by a condition. Field names are compared case-insensitively, values
exactly.

Every refusal is an :class:`infra.local.presigned_auth.S3Refusal`, with S3's status and code.
What S3 checks and this does not is listed in docs/presigned-uploads.md.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from typing import Any

from botocore.auth import HmacV1Auth, S3SigV4PostAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from infra.local.presigned_auth import (
    SIGV4_ALGORITHM,
    CredentialsLookup,
    S3Refusal,
    credential_scope,
    signature_mismatch,
    signer_credentials,
)

# Form fields S3 does not require a condition for (it reads or authenticates them itself).
_UNCONDITIONED_FIELDS = frozenset({"policy", "file", "x-amz-signature", "signature", "awsaccesskeyid"})


@dataclass(frozen=True)
class PostForm:
    """A POST form: its fields (names lower-cased, repeats joined by commas) and its one file."""

    fields: dict[str, str]
    file_name: str
    content: bytes


@dataclass(frozen=True)
class VerifiedPost:
    credentials: Credentials
    region: str | None
    key: str
    fields: dict[str, str]  # with ${filename} expanded


def verify_post(bucket: str, form: PostForm, lookup: CredentialsLookup, now: datetime) -> VerifiedPost:
    """The signer of a POST upload whose policy holds, or the :class:`S3Refusal` S3 would answer."""
    # "${filename}" is the file's name after its last / or \, in every field, before the policy.
    base_name = form.file_name.replace("\\", "/").rsplit("/", 1)[-1]
    fields = {name: value.replace("${filename}", base_name) for name, value in form.fields.items()}
    if "key" not in fields:
        raise _missing_field("key")
    if "x-amz-signature" not in fields and "signature" not in fields:
        raise S3Refusal(403, "AccessDenied", "Access Denied")  # anonymous: the bucket is private
    if "policy" not in fields:
        raise _missing_field("policy")
    if "x-amz-signature" in fields:
        credentials, region = _post_signer_v4(fields, lookup)
    else:
        credentials, region = _post_signer_v2(fields, lookup), None
    policy = _policy_document(fields["policy"])
    if now > policy.expiration:
        raise S3Refusal(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
    check_conditions(policy.conditions, bucket=bucket, fields=fields, size=len(form.content))
    return VerifiedPost(credentials, region, fields["key"], fields)


def _missing_field(name: str) -> S3Refusal:
    return S3Refusal(
        400,
        "InvalidArgument",
        f"Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields.",
        {"ArgumentName": name, "ArgumentValue": ""},
    )


def _post_signer_v4(fields: dict[str, str], lookup: CredentialsLookup) -> tuple[Credentials, str]:
    for name in ("x-amz-algorithm", "x-amz-credential", "x-amz-date"):
        if name not in fields:
            raise _missing_field(name)
    if fields["x-amz-algorithm"] != SIGV4_ALGORITHM:
        raise S3Refusal(
            400,
            "InvalidArgument",
            f'POST form field x-amz-algorithm only supports "{SIGV4_ALGORITHM}"',
            {"ArgumentName": "x-amz-algorithm", "ArgumentValue": fields["x-amz-algorithm"]},
        )
    try:
        access_key, day, region, service = credential_scope(fields["x-amz-credential"])
    except S3Refusal:
        raise S3Refusal(
            400,
            "InvalidArgument",
            "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed",
            {"ArgumentName": "x-amz-credential", "ArgumentValue": fields["x-amz-credential"]},
        ) from None
    credentials = signer_credentials(lookup, access_key, fields.get("x-amz-security-token"))
    signer = AWSRequest()
    signer.context["timestamp"] = f"{day}T000000Z"  # the signing key is derived from the scope's day
    expected = S3SigV4PostAuth(credentials, service, region).signature(fields["policy"], signer)
    if not hmac.compare_digest(expected, fields["x-amz-signature"]):
        raise signature_mismatch(access_key, fields["policy"], fields["x-amz-signature"])
    return credentials, region


def _post_signer_v2(fields: dict[str, str], lookup: CredentialsLookup) -> Credentials:
    if "awsaccesskeyid" not in fields:
        raise _missing_field("AWSAccessKeyId")
    credentials = signer_credentials(lookup, fields["awsaccesskeyid"], fields.get("x-amz-security-token"))
    expected = HmacV1Auth(credentials).sign_string(fields["policy"])
    if not hmac.compare_digest(expected, fields["signature"]):
        raise signature_mismatch(fields["awsaccesskeyid"], fields["policy"], fields["signature"])
    return credentials


@dataclass(frozen=True)
class _Policy:
    expiration: datetime
    conditions: list[Any]


def _invalid_policy(message: str) -> S3Refusal:
    return S3Refusal(400, "InvalidPolicyDocument", f"Invalid Policy: {message}")


def _policy_document(encoded: str) -> _Policy:
    try:
        document = json.loads(base64.b64decode(encoded, validate=True).decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError):
        raise _invalid_policy("Invalid JSON.") from None
    if not isinstance(document, dict) or "expiration" not in document:
        raise _invalid_policy("Policy missing expiration.")
    if not isinstance(document.get("conditions"), list):
        raise _invalid_policy("Policy missing conditions.")
    expiration = str(document["expiration"])
    for layout in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return _Policy(datetime.strptime(expiration, layout).replace(tzinfo=UTC), document["conditions"])
        except ValueError:
            continue
    raise _invalid_policy(f"Invalid 'expiration' value: '{expiration}'")


def check_conditions(conditions: list[Any], *, bucket: str, fields: Mapping[str, str], size: int) -> None:
    """Every condition holds and every form field is named by one, or the S3Refusal S3 answers."""
    named: set[str] = set()
    for condition in conditions:
        if isinstance(condition, list) and condition and str(condition[0]).lower() == "content-length-range":
            _check_length(condition, size)
            continue
        operator, name, expected = _parse_condition(condition)
        named.add(name.lower())
        actual = bucket if name.lower() == "bucket" else fields.get(name.lower(), "")
        if not _holds(operator, name.lower(), actual, expected):
            raise S3Refusal(
                403,
                "AccessDenied",
                f"Invalid according to Policy: Policy Condition failed: {json.dumps([operator, '$' + name, expected])}",
            )
    extra = [
        name
        for name in fields
        if name not in named and name not in _UNCONDITIONED_FIELDS and not name.startswith("x-ignore-")
    ]
    if extra:
        raise S3Refusal(
            403, "AccessDenied", f"Invalid according to Policy: Extra input fields: {', '.join(extra)}"
        )


def _parse_condition(condition: Any) -> tuple[str, str, str]:
    if isinstance(condition, dict) and len(condition) == 1:
        ((name, expected),) = condition.items()
        if isinstance(expected, str):
            return "eq", str(name), expected
    if (
        isinstance(condition, list)
        and len(condition) == 3
        and str(condition[0]).lower() in ("eq", "starts-with")
        and isinstance(condition[1], str)
        and condition[1].startswith("$")
        and isinstance(condition[2], str)
    ):
        return str(condition[0]).lower(), condition[1][1:], condition[2]
    raise _invalid_policy(f"Invalid Condition: {json.dumps(condition)}")


def _holds(operator: str, name: str, actual: str, expected: str) -> bool:
    if operator == "eq":
        return actual == expected
    if name == "content-type" and "," in actual:  # S3: each listed type must match
        return all(part.strip().startswith(expected) for part in actual.split(","))
    return actual.startswith(expected)


def _check_length(condition: list[Any], size: int) -> None:
    try:
        low, high = int(condition[1]), int(condition[2])
    except (IndexError, TypeError, ValueError):
        raise _invalid_policy(f"Invalid content-length-range: {json.dumps(condition)}") from None
    if size < low:
        raise S3Refusal(
            400,
            "EntityTooSmall",
            "Your proposed upload is smaller than the minimum allowed size",
            {"ProposedSize": str(size), "MinSizeAllowed": str(low)},
        )
    if size > high:
        raise S3Refusal(
            400,
            "EntityTooLarge",
            "Your proposed upload exceeds the maximum allowed size",
            {"ProposedSize": str(size), "MaxSizeAllowed": str(high)},
        )


def multipart_boundary(content_type: str) -> str | None:
    """The boundary of a ``multipart/form-data`` Content-Type, else None."""
    header = Message()
    header["content-type"] = content_type
    if header.get_content_type() != "multipart/form-data":
        return None
    boundary = header.get_param("boundary")
    return boundary if isinstance(boundary, str) and boundary else None


def parse_form(body: bytes, boundary: str) -> PostForm:
    """The fields up to and including the first file part (S3 ignores what follows it)."""
    from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

    malformed = S3Refusal(
        400, "MalformedPOSTRequest", "The body of your POST request is not well-formed multipart/form-data."
    )
    decoder = MultipartDecoder(boundary.encode("latin-1"))
    try:
        decoder.receive_data(body)
        decoder.receive_data(None)
        values: dict[str, list[str]] = {}
        part: tuple[str, bytearray] | None = None
        file_name: str | None = None
        event = decoder.next_event()
        while not isinstance(event, (Epilogue, NeedData)):
            if isinstance(event, File) or (isinstance(event, Field) and event.name.lower() == "file"):
                # S3 takes the file part, or text content in a plain field named "file".
                part, file_name = ("file", bytearray()), getattr(event, "filename", "") or ""
            elif isinstance(event, Field):
                part = (event.name.lower(), bytearray())
            elif isinstance(event, Data) and part is not None:
                part[1].extend(event.data)
                if not event.more_data:
                    if file_name is not None:
                        return PostForm(
                            {n: ",".join(v) for n, v in values.items()}, file_name, bytes(part[1])
                        )
                    values.setdefault(part[0], []).append(part[1].decode("utf-8"))
            event = decoder.next_event()
    except (ValueError, UnicodeDecodeError):
        raise malformed from None
    raise S3Refusal(
        400,
        "InvalidArgument",
        "POST requires exactly one file upload per request.",
        {"ArgumentName": "file", "ArgumentValue": "0"},
    )
