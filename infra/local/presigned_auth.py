"""S3's checks of a presigned request, as S3 documents them: query-string auth and POST policies.

moto 5.2.5 cannot take a presigned request once its IAM checks are on (it reads a missing
``Authorization`` header and answers 500), so the local system checks presigned requests here,
in front of moto (infra/local/presigned_gateway.py), and forwards what passes as the signer.

Query-string authentication ("Authenticating Requests: Using Query Parameters"):

* SigV4 (``X-Amz-Algorithm/Credential/Date/Expires/SignedHeaders/Signature``): the parameters
  are present and well formed, the credential scope is ``<key>/<X-Amz-Date's day>/<the bucket's
  region>/s3/aws4_request``, ``X-Amz-Expires`` is 0..604800, the URL has not expired, no
  ``x-amz-*`` header is sent unsigned, and the signature recomputed with the key's secret by
  botocore's own S3 query signer (canonical request over the signed headers, the query without
  ``X-Amz-Signature``, ``UNSIGNED-PAYLOAD``) equals ``X-Amz-Signature``;
* SigV2 (``AWSAccessKeyId/Expires/Signature``): not expired, and the signature recomputed by
  botocore's HMAC-SHA1 query signer (verb, Content-MD5, Content-Type, Expires, the x-amz-*
  headers and the resource with its sub-resources) equals ``Signature``.

Browser-based POST ("Browser-Based Uploads Using POST", "Creating a POST Policy"): the form is
multipart/form-data with ``key``, ``policy`` and one file as the last part (later parts are
ignored); ``${filename}`` is expanded in every field before the policy is checked; the policy's
signature (SigV4: HMAC-SHA256 with the derived signing key; SigV2: HMAC-SHA1) is botocore's; the
policy has an ``expiration`` in the future and ``conditions`` that all hold (exact match, ``eq``,
``starts-with`` including the comma-separated Content-Type rule, ``content-length-range``,
``bucket``); and every form field except ``policy``, ``file``, the signature fields and
``x-ignore-*`` is named by a condition. Field names are compared case-insensitively, values
exactly.

Every refusal is an :class:`S3Refusal`: S3's status, error code, message and extra elements.
What S3 checks and this does not is listed in docs/presigned-uploads.md.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from botocore.auth import HmacV1Auth, HmacV1QueryAuth, S3SigV4PostAuth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

SIGV4_ALGORITHM = "AWS4-HMAC-SHA256"
MAX_EXPIRES_S = 7 * 24 * 3600  # S3: "X-Amz-Expires must be less than a week"
SIGV4_QUERY_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)
SIGV2_QUERY_PARAMS = ("AWSAccessKeyId", "Expires", "Signature")
SECURITY_TOKEN = "X-Amz-Security-Token"
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
# Form fields S3 does not require a condition for (it reads or authenticates them itself).
_UNCONDITIONED_FIELDS = frozenset({"policy", "file", "x-amz-signature", "signature", "awsaccesskeyid"})

# (access key id, session token or None) -> the key's credentials, None for an unknown key.
CredentialsLookup = Callable[[str, str | None], Credentials | None]


class S3Refusal(Exception):
    """What S3 answers to a request it refuses: status, error code, message, extra elements."""

    def __init__(self, status: int, code: str, message: str, details: Mapping[str, str] | None = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = dict(details or {})


@dataclass(frozen=True)
class QueryRequest:
    """A request as it arrived: ``raw_path`` still percent-encoded, ``headers`` lower-cased."""

    method: str
    host: str
    raw_path: str
    query: Sequence[tuple[str, str]]
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Verified:
    """Who signed, and what of the request goes on to moto (the query without its auth params)."""

    credentials: Credentials
    region: str | None
    forwarded_query: list[tuple[str, str]] = field(default_factory=list)


def signature_version(query: Sequence[tuple[str, str]]) -> str | None:
    """``"s3v4"`` or ``"s3"`` for an S3 presigned URL's query, else None (not presigned, or
    another service's query API: SigV4 for another service, SigV2 with ``SignatureVersion``)."""
    names = {name for name, _ in query}
    if "X-Amz-Signature" in names or "X-Amz-Credential" in names or "X-Amz-Algorithm" in names:
        credential = dict(query).get("X-Amz-Credential", "")
        parts = credential.split("/")
        return "s3v4" if len(parts) != 5 or parts[3] == "s3" else None
    if "Signature" in names and "AWSAccessKeyId" in names and "SignatureVersion" not in names:
        return "s3"
    return None


def verify_query(
    request: QueryRequest, lookup: CredentialsLookup, now: datetime, *, bucket_region: str | None = None
) -> Verified:
    """The signer of a presigned URL, or the :class:`S3Refusal` S3 would answer."""
    if signature_version(request.query) == "s3v4":
        return _verify_query_v4(request, lookup, now, bucket_region)
    return _verify_query_v2(request, lookup, now)


def _query_error(message: str, details: Mapping[str, str] | None = None) -> S3Refusal:
    return S3Refusal(400, "AuthorizationQueryParametersError", message, details)


def _verify_query_v4(
    request: QueryRequest, lookup: CredentialsLookup, now: datetime, bucket_region: str | None
) -> Verified:
    params = dict(request.query)
    if any(name not in params for name in SIGV4_QUERY_PARAMS):
        raise _query_error(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
            "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
        )
    if params["X-Amz-Algorithm"] != SIGV4_ALGORITHM:
        raise _query_error(f'X-Amz-Algorithm only supports "{SIGV4_ALGORITHM}"')
    access_key, day, region, service = _credential_scope(params["X-Amz-Credential"])
    signed_at = _parse_amz_date(params["X-Amz-Date"])
    if day != params["X-Amz-Date"][:8]:
        raise _query_error(
            f'Invalid credential date "{day}". This date is not the same as X-Amz-Date: "{params["X-Amz-Date"][:8]}".'
        )
    if service != "s3":
        raise _query_error(
            f'Error parsing the X-Amz-Credential parameter; incorrect service "{service}". This endpoint belongs to "s3".'
        )
    if bucket_region and region != bucket_region:
        raise _query_error(
            f"Error parsing the X-Amz-Credential parameter; the region '{region}' is wrong; expecting '{bucket_region}'",
            {"Region": bucket_region},
        )
    expires_s = _parse_expires(params["X-Amz-Expires"])
    credentials = _credentials(lookup, access_key, params.get(SECURITY_TOKEN))
    expires_at = signed_at + timedelta(seconds=expires_s)
    if now > expires_at:
        raise S3Refusal(
            403,
            "AccessDenied",
            "Request has expired",
            {"X-Amz-Expires": str(expires_s), "Expires": _iso(expires_at), "ServerTime": _iso(now)},
        )
    signed_names = params["X-Amz-SignedHeaders"].split(";")
    unsigned = sorted(
        name for name in request.headers if name.startswith("x-amz-") and name not in signed_names
    )
    if unsigned:
        raise S3Refusal(
            403,
            "AccessDenied",
            "There were headers present in the request which were not signed",
            {"HeadersNotSigned": ", ".join(unsigned)},
        )
    headers = {name: request.headers[name] for name in signed_names if name in request.headers}
    canonical_path = quote(unquote(request.raw_path), safe="/~")
    signed = AWSRequest(
        method=request.method,
        url=f"http://{request.host}{canonical_path}",
        headers=headers,
        params=[(name, value) for name, value in request.query if name != "X-Amz-Signature"],
    )
    signed.context["timestamp"] = params["X-Amz-Date"]
    auth = S3SigV4QueryAuth(credentials, service, region, expires=expires_s)
    canonical_request = auth.canonical_request(signed)
    string_to_sign = auth.string_to_sign(signed, canonical_request)
    expected = auth.signature(string_to_sign, signed)
    if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
        raise _signature_mismatch(access_key, string_to_sign, params["X-Amz-Signature"], canonical_request)
    auth_params = {*SIGV4_QUERY_PARAMS, SECURITY_TOKEN}
    return Verified(credentials, region, [(n, v) for n, v in request.query if n not in auth_params])


def _verify_query_v2(request: QueryRequest, lookup: CredentialsLookup, now: datetime) -> Verified:
    params = dict(request.query)
    if any(name not in params for name in SIGV2_QUERY_PARAMS):
        raise S3Refusal(
            403,
            "AccessDenied",
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters",
        )
    try:
        expires = int(params["Expires"])
    except ValueError:
        raise S3Refusal(
            403, "AccessDenied", f"Invalid date (should be seconds since epoch): {params['Expires']}"
        ) from None
    token = next((v for n, v in request.query if n.lower() == SECURITY_TOKEN.lower()), None)
    credentials = _credentials(lookup, params["AWSAccessKeyId"], token)
    expires_at = datetime.fromtimestamp(expires, UTC)
    if now > expires_at:
        raise S3Refusal(
            403, "AccessDenied", "Request has expired", {"Expires": _iso(expires_at), "ServerTime": _iso(now)}
        )
    headers = HTTPHeaders()
    for name, value in request.headers.items():
        if name in ("content-md5", "content-type") or name.startswith("x-amz-"):
            headers[name] = value
    # botocore's SigV2 presigner signs the x-amz-* headers and then moves them into the query.
    for name, value in request.query:
        if name.lower().startswith("x-amz-") and name.lower() not in headers:
            headers[name.lower()] = value
    raw_query = "&".join(f"{quote(n, safe='')}={quote(v, safe='')}" for n, v in request.query)
    split = urlsplit(f"http://{request.host}{request.raw_path}?{raw_query}")
    auth = _SigV2QueryAuthAt(credentials, expires)
    string_to_sign = auth.canonical_string(request.method, split, headers)
    expected = auth.sign_string(string_to_sign)
    if not hmac.compare_digest(expected, params["Signature"]):
        raise _signature_mismatch(params["AWSAccessKeyId"], string_to_sign, params["Signature"])
    auth_params = {name.lower() for name in (*SIGV2_QUERY_PARAMS, SECURITY_TOKEN)}
    return Verified(credentials, None, [(n, v) for n, v in request.query if n.lower() not in auth_params])


class _SigV2QueryAuthAt(HmacV1QueryAuth):
    """botocore's SigV2 query signer, with the URL's ``Expires`` instead of now + a lifetime."""

    def __init__(self, credentials: Credentials, expires: int):
        super().__init__(credentials, expires=0)
        self._expires_at = expires

    def _get_date(self) -> str:
        return str(self._expires_at)


def _signature_mismatch(
    access_key: str, string_to_sign: str, provided: str, canonical_request: str | None = None
) -> S3Refusal:
    details = {"AWSAccessKeyId": access_key, "StringToSign": string_to_sign, "SignatureProvided": provided}
    if canonical_request is not None:
        details["CanonicalRequest"] = canonical_request
    return S3Refusal(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
        details,
    )


def _credential_scope(credential: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
        raise _query_error(
            "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; "
            'expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".'
        )
    return parts[0], parts[1], parts[2], parts[3]


def _parse_amz_date(value: str) -> datetime:
    try:
        return datetime.strptime(value, _AMZ_DATE).replace(tzinfo=UTC)
    except ValueError:
        raise _query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"") from None


def _parse_expires(value: str) -> int:
    try:
        expires_s = int(value)
    except ValueError:
        raise _query_error("X-Amz-Expires should be a number") from None
    if expires_s < 0:
        raise _query_error("X-Amz-Expires must be non-negative")
    if expires_s > MAX_EXPIRES_S:
        raise _query_error(f"X-Amz-Expires must be less than a week (in seconds) that is {MAX_EXPIRES_S}")
    return expires_s


def _credentials(lookup: CredentialsLookup, access_key: str, token: str | None) -> Credentials:
    credentials = lookup(access_key, token)
    if credentials is None:
        raise S3Refusal(
            403,
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
            {"AWSAccessKeyId": access_key},
        )
    return credentials


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- browser-based POST ------------------------------------------------------------------------


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
        access_key, day, region, service = _credential_scope(fields["x-amz-credential"])
    except S3Refusal:
        raise S3Refusal(
            400,
            "InvalidArgument",
            "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed",
            {"ArgumentName": "x-amz-credential", "ArgumentValue": fields["x-amz-credential"]},
        ) from None
    credentials = _credentials(lookup, access_key, fields.get("x-amz-security-token"))
    signer = AWSRequest()
    signer.context["timestamp"] = f"{day}T000000Z"  # the signing key is derived from the scope's day
    expected = S3SigV4PostAuth(credentials, service, region).signature(fields["policy"], signer)
    if not hmac.compare_digest(expected, fields["x-amz-signature"]):
        raise _signature_mismatch(access_key, fields["policy"], fields["x-amz-signature"])
    return credentials, region


def _post_signer_v2(fields: dict[str, str], lookup: CredentialsLookup) -> Credentials:
    if "awsaccesskeyid" not in fields:
        raise _missing_field("AWSAccessKeyId")
    credentials = _credentials(lookup, fields["awsaccesskeyid"], fields.get("x-amz-security-token"))
    expected = HmacV1Auth(credentials).sign_string(fields["policy"])
    if not hmac.compare_digest(expected, fields["signature"]):
        raise _signature_mismatch(fields["awsaccesskeyid"], fields["policy"], fields["signature"])
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
