"""The function's HTTP face: a Lambda Function URL (``AuthType: AWS_IAM``) event in, an answer out.

Requests (payload format 2.0, what a Function URL sends):

* ``POST`` with an image body (JPEG/PNG; Function URLs deliver binary bodies base64-encoded,
  ``isBase64Encoded: true``). Lambda's synchronous payload limit is 6 MB, base64 included, so
  an image can be about 4.4 MB; the deployment's byte and pixel limits apply as in the event
  path.
* ``POST`` with ``{"s3": "s3://bucket/key"}`` (``Content-Type: application/json``): the
  object is read with the function's own role, so only what the role may read (the frames
  prefix) can be classified, and a key outside the frames prefix is refused (``403``) before
  any read. ``"write": true`` (or ``?write=true``) also records the result item and tags,
  through the very same code as an S3 event; nothing is written otherwise. ``write`` is read
  strictly: a JSON boolean or ``true`` / ``false``; anything else is a ``400``.

Answers: ``200`` with the label (binary/multiclass) or labels (multi-label), ``top_label``,
``confidence``, every probability, ``model_version`` and ``model_sha256``; ``4xx`` with the
loader's reason code and message for bad input (``400`` unreadable, ``413`` too many
bytes/pixels, ``415`` not a JPEG/PNG, ``404`` no such object), ``405`` for other methods,
``503`` for a transient failure, ``502`` for any other: a 5xx body carries the request id to
quote (``request_id``), never the exception text, which goes to the log. IAM authentication is done by the Function URL before
the function runs; the caller's identity arrives in ``requestContext.authorizer.iam``.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from typing import Any
from urllib.parse import parse_qs

from functions.errors import (
    BadInputError,
    CamsortError,
    NotAnImageError,
    SupersededObjectError,
    TooManyBytesError,
    TooManyPixelsError,
    TransientError,
)
from functions.frames.events import FrameEvent
from functions.frames.on_demand import classify_images, rejected
from functions.observability import logger

STATUS_FOR_REASON = {
    TooManyBytesError.reason: 413,
    TooManyPixelsError.reason: 413,
    NotAnImageError.reason: 415,
    SupersededObjectError.reason: 404,
}
JSON_TYPES = ("application/json",)
HTTP_EVENT_NAME = "http:ClassifyRequest"  # event_name of a result written on request


def is_function_url_event(event: Any) -> bool:
    """Payload format 2.0 with an HTTP request context: a Function URL (or API Gateway HTTP API)."""
    return (
        isinstance(event, dict)
        and event.get("version") == "2.0"
        and isinstance(event.get("requestContext"), dict)
        and "http" in event["requestContext"]
    )


def respond(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body, sort_keys=True),
        "isBase64Encoded": False,
    }


def handle_http(event: dict[str, Any], get_app) -> dict[str, Any]:
    method = event["requestContext"]["http"].get("method", "")
    request_id = str(event["requestContext"].get("requestId") or uuid.uuid4())
    if method != "POST":
        return respond(
            405, {"error": "method_not_allowed", "detail": f"{method}: POST an image or {{'s3': ...}}"}
        )
    try:
        data = _body(event)
        query = parse_qs(event.get("rawQueryString") or "", keep_blank_values=True)
        write = parse_write(query["write"][-1], "?write=") if "write" in query else False
    except ValueError as exc:
        return respond(400, {"error": "bad_request", "detail": str(exc)})
    headers = {name.lower(): value for name, value in (event.get("headers") or {}).items()}
    try:
        app = get_app()
        if headers.get("content-type", "").split(";")[0].strip() in JSON_TYPES:
            try:
                request = json.loads(data.decode("utf-8"))
                uri = request["s3"]
                if "write" in request:
                    write = write or parse_write(request["write"], '"write"')
            except ValueError as exc:  # includes JSONDecodeError and UnicodeDecodeError
                return respond(400, {"error": "bad_request", "detail": str(exc)})
            except (KeyError, TypeError) as exc:
                return respond(
                    400, {"error": "bad_request", "detail": f'expected {{"s3": "s3://bucket/key"}} ({exc!r})'}
                )
            return _classify_object(app, uri, write, request_id)
        if write:
            return respond(
                400, {"error": "bad_request", "detail": 'write=true needs an S3 object: POST {"s3": ...}'}
            )
        settings = app.settings
        answer = classify_images(
            app.model, [("request body", data)], max_bytes=settings.max_bytes, max_pixels=settings.max_pixels
        )[0]
        return _answer(answer)
    except Exception as exc:  # noqa: BLE001 - a 5xx names the request, never the exception
        return server_error(exc, request_id)


def parse_write(value: Any, where: str) -> bool:
    """``write`` strictly: a JSON boolean or the text true / false (any case); anything else is a
    ValueError (400), never read as true."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"{where} must be true or false, not {value!r}")


def server_error(exc: BaseException, request_id: str, status: int | None = None) -> dict[str, Any]:
    """A 5xx answer: the request id to quote, the details in the log only (they may name
    internal resources). 503 for a transient failure (retry), else 502 (or ``status``)."""
    transient = isinstance(exc, TransientError)
    status = status or (503 if transient else 502)
    logger.error(
        f"HTTP request {request_id} failed with {status}: {exc}",
        extra={"request_id": request_id},
        exc_info=None if isinstance(exc, CamsortError) else exc,
    )
    error = "transient" if transient else "internal_error"
    hint = "retry later" if transient else "report the request id"
    return respond(status, {"error": error, "request_id": request_id, "detail": f"{hint} ({request_id})"})


def _body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"the body is marked base64 but does not decode ({exc})") from exc
    return body.encode("utf-8")


def _answer(answer: dict[str, Any]) -> dict[str, Any]:
    if answer["status"] == "ok":
        return respond(200, answer)
    return respond(STATUS_FOR_REASON.get(answer["reason"], 400), {"error": answer["reason"], **answer})


def _classify_object(app, uri: str, write: bool, request_id: str | None) -> dict[str, Any]:
    if not isinstance(uri, str) or not uri.startswith("s3://") or "/" not in uri[5:]:
        return respond(400, {"error": "bad_request", "detail": f"{uri!r}: write s3://bucket/key"})
    bucket, key = uri[5:].split("/", 1)
    settings = app.settings
    if not key.startswith(settings.frames_prefix):  # refused before any read
        return respond(
            403,
            {
                "error": "forbidden",
                "detail": f"{uri}: only keys under the frames prefix {settings.frames_prefix!r}",
            },
        )
    if write:
        from functions.frames.classify import classify_frames

        if not settings.results_table:
            return respond(
                400, {"error": "bad_request", "detail": "this endpoint has no results table: write is off"}
            )
        info = app.store.head_frame(bucket, key)
        frame = FrameEvent(
            bucket=bucket,
            key=key,
            size=info.size,
            etag=info.etag,
            version_id=info.version_id,
            sequencer="",  # no S3 event: a result already recorded for this version is kept
            event_time=None,
            event_name=HTTP_EVENT_NAME,
            source_id=request_id,
        )
        outcome = classify_frames([frame], app)[0]
        if outcome.failed:
            return server_error(outcome.error or RuntimeError(outcome.detail), request_id or "")
        if outcome.status == "rejected":
            return _answer(
                {"source": uri, "status": "rejected", "reason": outcome.reason, "detail": outcome.detail}
            )
        return respond(
            200,
            {
                "source": uri,
                "status": "ok",
                **(outcome.answer or {}),
                "written": outcome.written,
                "duplicate": outcome.status == "duplicate",
                "model_version": app.model.manifest.model_version,
                "model_sha256": app.model.sha256,
            },
        )
    try:
        stored = app.store.get_frame(bucket, key, max_bytes=settings.max_bytes)
    except BadInputError as exc:
        return _answer(rejected(uri, exc))
    answer = classify_images(
        app.model, [(uri, stored.data)], max_bytes=settings.max_bytes, max_pixels=settings.max_pixels
    )[0]
    return _answer({**answer, "written": False})
