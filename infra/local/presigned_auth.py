"""S3's checks of a presigned URL, as S3 documents them (query-string authentication).

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

Browser-based POST forms are checked in :mod:`infra.local.post_policy`.

Every refusal is an :class:`S3Refusal`: S3's status, error code, message and extra elements.
What S3 checks and this does not is listed in docs/presigned-uploads.md.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote, urlsplit

from botocore.auth import HmacV1QueryAuth, S3SigV4QueryAuth
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
    access_key, day, region, service = credential_scope(params["X-Amz-Credential"])
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
    credentials = signer_credentials(lookup, access_key, params.get(SECURITY_TOKEN))
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
        raise signature_mismatch(access_key, string_to_sign, params["X-Amz-Signature"], canonical_request)
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
    credentials = signer_credentials(lookup, params["AWSAccessKeyId"], token)
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
        raise signature_mismatch(params["AWSAccessKeyId"], string_to_sign, params["Signature"])
    auth_params = {name.lower() for name in (*SIGV2_QUERY_PARAMS, SECURITY_TOKEN)}
    return Verified(credentials, None, [(n, v) for n, v in request.query if n.lower() not in auth_params])


class _SigV2QueryAuthAt(HmacV1QueryAuth):
    """botocore's SigV2 query signer, with the URL's ``Expires`` instead of now + a lifetime."""

    def __init__(self, credentials: Credentials, expires: int):
        super().__init__(credentials, expires=0)
        self._expires_at = expires

    def _get_date(self) -> str:
        return str(self._expires_at)


def signature_mismatch(
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


def credential_scope(credential: str) -> tuple[str, str, str, str]:
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


def signer_credentials(lookup: CredentialsLookup, access_key: str, token: str | None) -> Credentials:
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
