"""Presigned S3 requests on the local moto server: checked as S3 checks them, then run as the signer.

moto 5.2.5 with IAM enforcement on answers 500 (``KeyError: 'HTTP_AUTHORIZATION'``) to any S3
request without an ``Authorization`` header: a presigned PUT or GET URL (SigV4 or SigV2) and a
browser-based POST form alike. Cameras that get presigned URLs from a small service are a common
setup, so the project's moto server (infra/local/moto_server.py) runs moto's WSGI app behind
:class:`PresignedGateway`, in the same process and on the same port:

* a request with an ``Authorization`` header, or any request while IAM is not enforced, goes to
  moto untouched;
* a presigned URL (query-string auth) is checked by :func:`infra.local.presigned_auth.verify_query`
  with the signer's secret from moto's own IAM/STS backends; a POST form by
  :func:`infra.local.post_policy.verify_post` (signature, expiration, every policy condition);
* what S3 would refuse gets S3's status and XML error body here;
* what passes is forwarded to moto *as the signer*: the request (a POST form becomes the
  PutObject it stands for: the file as the body, its Content-Type, Cache-Control, ... and
  x-amz-* fields as headers) is signed with the signer's own key by botocore's SigV4 signer, so
  moto authenticates it and evaluates the signer's IAM policy on ``arn:aws:s3:::bucket/key`` as
  it does for every other request: a camera may only put under its own prefix, whatever its
  URL or POST policy says. A POST's answer is then S3's (204, or 200/201/303 as
  ``success_action_status`` / ``success_action_redirect`` ask).

Only path-style requests are recognised (the local endpoint is ``http://127.0.0.1:<port>``).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit
from xml.sax.saxutils import escape

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode_sequence

from infra.local.post_policy import multipart_boundary, parse_form, verify_post
from infra.local.presigned_auth import QueryRequest, S3Refusal, signature_version, verify_query

# The scope of the forwarded signature when the request named none (SigV2) and the bucket is
# unknown: moto accepts any region of the partition.
_FALLBACK_REGION = "us-east-1"
# POST form fields that become the PutObject's headers (the rest is auth, policy or S3's answer).
_HEADER_FIELDS = ("cache-control", "content-disposition", "content-encoding", "content-type", "expires")
_NOT_HEADERS = (
    "x-amz-algorithm",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-signature",
    "x-amz-security-token",
)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class PresignedGateway:
    """WSGI middleware in front of moto's app (module doc)."""

    def __init__(self, app: WsgiApp, *, now: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.app = app
        self.now = now

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if "HTTP_AUTHORIZATION" in environ or not iam_enforced():
            return self.app(environ, start_response)
        query = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        is_form_post = environ["REQUEST_METHOD"] == "POST" and multipart_boundary(
            environ.get("CONTENT_TYPE", "")
        )
        if not signature_version(query) and not is_form_post:
            return self.app(environ, start_response)
        from werkzeug.wsgi import get_input_stream

        body = get_input_stream(environ).read()  # read it all first, also before a refusal
        environ.setdefault("HTTP_HOST", f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}")  # HTTP/1.0
        try:
            if signature_version(query):
                return self._query_signed(environ, start_response, query, body)
            return self._form_post(environ, start_response, body)
        except S3Refusal as refusal:
            document = _refusal_document(refusal)
            start_response(f"{refusal.status} {_REASONS.get(refusal.status, 'Error')}", document.headers)
            return [b"" if environ["REQUEST_METHOD"] == "HEAD" else document.body]

    def _query_signed(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        query: list[tuple[str, str]],
        body: bytes,
    ) -> Iterable[bytes]:
        raw_path = _raw_path(environ)
        bucket_region = moto_bucket_region(unquote(raw_path).lstrip("/").split("/", 1)[0])
        verified = verify_query(
            QueryRequest(environ["REQUEST_METHOD"], environ["HTTP_HOST"], raw_path, query, _headers(environ)),
            moto_credentials,
            self.now(),
            bucket_region=bucket_region,
        )
        region = verified.region or bucket_region
        forwarded = _forwarded(
            environ, verified.credentials, region, raw_path, verified.forwarded_query, body
        )
        return self.app(forwarded, start_response)

    def _form_post(
        self, environ: dict[str, Any], start_response: Callable[..., Any], body: bytes
    ) -> Iterable[bytes]:
        raw_path = _raw_path(environ)
        bucket = unquote(raw_path).strip("/")
        if not bucket or "/" in bucket:  # a form POST goes to the bucket, path-style
            return self.app({**environ, "wsgi.input": io.BytesIO(body)}, start_response)
        form = parse_form(body, multipart_boundary(environ.get("CONTENT_TYPE", "")) or "")
        post = verify_post(bucket, form, moto_credentials, self.now())
        headers = {name: value for name, value in post.fields.items() if name in _HEADER_FIELDS}
        headers |= {
            name: value
            for name, value in post.fields.items()
            if name.startswith("x-amz-") and name not in _NOT_HEADERS
        }
        if "acl" in post.fields:
            headers["x-amz-acl"] = post.fields["acl"]
        key_path = f"/{bucket}/{quote(post.key, safe='/~')}"
        put = _forwarded(
            environ,
            post.credentials,
            post.region or moto_bucket_region(bucket),
            key_path,
            [],
            form.content,
            method="PUT",
            headers=headers,
        )
        status, response_headers, response_body = _call(self.app, put)
        if not status.startswith("200"):
            start_response(status, response_headers)  # moto's own answer: IAM's AccessDenied, ...
            return [response_body]
        return _post_answer(
            start_response, environ["HTTP_HOST"], bucket, post.key, post.fields, dict(response_headers)
        )


def _post_answer(
    start_response: Callable[..., Any],
    host: str,
    bucket: str,
    key: str,
    fields: dict[str, str],
    put_headers: dict[str, str],
) -> Iterable[bytes]:
    """S3's answer to a successful POST: 204 unless success_action_redirect / _status ask otherwise."""
    etag = put_headers.get("ETag", "")
    location = f"http://{host}/{bucket}/{quote(key, safe='/~')}"
    headers = [("ETag", etag), ("Location", location)]
    headers += [(name, value) for name, value in put_headers.items() if name.lower().startswith("x-amz-")]
    redirect = fields.get("success_action_redirect") or fields.get("redirect")
    if redirect and urlsplit(redirect).scheme in ("http", "https"):
        separator = "&" if urlsplit(redirect).query else "?"
        target = redirect + separator + urlencode({"bucket": bucket, "key": key, "etag": etag})
        redirect_headers = [(name, value) for name, value in headers if name != "Location"]
        start_response("303 See Other", [*redirect_headers, ("Location", target), ("Content-Length", "0")])
        return [b""]
    status = fields.get("success_action_status")
    if status == "201":
        document = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<PostResponse>'
            f"<Location>{escape(location)}</Location><Bucket>{escape(bucket)}</Bucket>"
            f"<Key>{escape(key)}</Key><ETag>{escape(etag)}</ETag></PostResponse>"
        ).encode()
        start_response(
            "201 Created",
            [*headers, ("Content-Type", "application/xml"), ("Content-Length", str(len(document)))],
        )
        return [document]
    start_response("200 OK" if status == "200" else "204 No Content", [*headers, ("Content-Length", "0")])
    return [b""]


@dataclass(frozen=True)
class _Document:
    headers: list[tuple[str, str]]
    body: bytes


_REASONS = {400: "Bad Request", 403: "Forbidden"}


def _refusal_document(refusal: S3Refusal) -> _Document:
    """S3's XML error body (and its headers) for a refusal."""
    request_id = uuid.uuid4().hex[:16].upper()
    details = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in refusal.details.items())
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(refusal.code)}</Code><Message>{escape(refusal.message)}</Message>"
        f"{details}<RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>"
    ).encode()
    headers = [
        ("Content-Type", "application/xml"),
        ("Content-Length", str(len(body))),
        ("x-amz-request-id", request_id),
    ]
    return _Document(headers, body)


def _forwarded(
    environ: dict[str, Any],
    credentials: Credentials,
    region: str | None,
    raw_path: str,
    query: list[tuple[str, str]],
    body: bytes,
    *,
    method: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The request moto gets: same path (or the POST's key), signed with the signer's own key."""
    query_string = percent_encode_sequence(query) if query else ""
    uri = raw_path + (f"?{query_string}" if query_string else "")
    forwarded = {name: value for name, value in environ.items() if name != "HTTP_TRANSFER_ENCODING"}
    if headers is not None:  # a POST form's own headers (multipart Content-Type, ...) are not the PUT's
        forwarded = {
            name: value
            for name, value in forwarded.items()
            if name != "CONTENT_TYPE" and (not name.startswith("HTTP_") or name == "HTTP_HOST")
        }
    forwarded.update(
        REQUEST_METHOD=method or environ["REQUEST_METHOD"],
        # PATH_INFO as WSGI servers give it: decoded, its bytes as latin-1 characters.
        PATH_INFO=unquote(raw_path).encode("utf-8").decode("latin-1"),
        QUERY_STRING=query_string,
        RAW_URI=uri,
        REQUEST_URI=uri,
        CONTENT_LENGTH=str(len(body)),
    )
    forwarded["wsgi.input"] = io.BytesIO(body)
    for name, value in (headers or {}).items():
        if name == "content-type":
            forwarded["CONTENT_TYPE"] = value
        else:
            forwarded["HTTP_" + name.upper().replace("-", "_")] = value
    signed = AWSRequest(
        method=forwarded["REQUEST_METHOD"],
        url=f"http://{environ['HTTP_HOST']}{uri}",
        data=body,
        headers={"host": environ["HTTP_HOST"]},
    )
    S3SigV4Auth(credentials, "s3", region or _FALLBACK_REGION).add_auth(signed)
    for name in ("Authorization", "X-Amz-Date", "X-Amz-Content-SHA256", "X-Amz-Security-Token"):
        if name in signed.headers:
            forwarded["HTTP_" + name.upper().replace("-", "_")] = signed.headers[name]
    return forwarded


def _call(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    answer: dict[str, Any] = {}

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        answer.update(status=status, headers=headers)
        return lambda _data: None

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close:
            close()
    return answer["status"], answer["headers"], body


def _raw_path(environ: dict[str, Any]) -> str:
    """The path as the client sent it, still percent-encoded (werkzeug's RAW_URI)."""
    raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(environ.get("PATH_INFO", "/"))
    path = urlsplit(raw_uri).path if "://" in raw_uri else raw_uri.split("?", 1)[0]
    return path or "/"


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {
        name[5:].lower().replace("_", "-"): value
        for name, value in environ.items()
        if name.startswith("HTTP_")
    }
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH", "CONTENT_MD5"):
        if environ.get(name):
            headers[name.lower().replace("_", "-")] = environ[name]
    return headers


# --- moto's side: the server process's IAM state -----------------------------------------------


def iam_enforced() -> bool:
    """Whether moto checks every request now (infra.local.moto_server.set_iam_enforcement)."""
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    return ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT


def moto_credentials(access_key_id: str, token: str | None) -> Credentials | None:
    """The key's credentials from moto's IAM users or STS sessions, as moto's own checks find them."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.access_control import CreateAccessKeyFailure, create_access_key

    try:
        key = create_access_key(
            account_id=DEFAULT_ACCOUNT_ID,
            partition="aws",
            access_key_id=access_key_id,
            headers={"X-Amz-Security-Token": token} if token else {},
        )
    except CreateAccessKeyFailure as failure:
        if failure.reason == "InvalidToken":
            raise S3Refusal(
                400, "InvalidToken", "The provided token is malformed or otherwise invalid."
            ) from None
        return None
    return key.create_credentials()


def moto_bucket_region(bucket: str) -> str | None:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.exceptions import MissingBucket
    from moto.s3.models import s3_backends

    try:
        return s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_bucket(bucket).region_name
    except MissingBucket:
        return None
