"""S3 adapter: read a frame, tag it. botocore errors become camsort errors by type/code.

The client is injected (production: :mod:`functions.wiring`; tests: a client on moto).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

from functions import env
from functions.errors import (
    ArchivedObjectError,
    CustomerKeyEncryptedError,
    StorageError,
    SupersededObjectError,
    TooManyBytesError,
    TransientError,
)
from functions.iam import requires

# Error codes worth a retry: botocore's own "throttled" and "transient" lists (standard retry
# mode), plus the 5xx codes S3 and DynamoDB use. A client configured with retries has already
# retried these; when one still surfaces, SQS retries the message later.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
# The object changed or vanished between the event and our GetObject.
SUPERSEDED_ERROR_CODES = frozenset({"PreconditionFailed", "NoSuchKey", "NoSuchVersion"})
# Objects S3 will never serve to a plain GetObject, however often it is retried: an archived
# storage class (GLACIER, DEEP_ARCHIVE, or an archive tier of Intelligent-Tiering) answers 403
# InvalidObjectState until restored; an object encrypted with a customer-provided key (SSE-C)
# answers 400 InvalidRequest without that key (the function never has it, and every other
# cause of InvalidRequest on this fixed-shape read is just as permanent).
ARCHIVED_ERROR_CODE = "InvalidObjectState"
CUSTOMER_KEY_ERROR_CODE = "InvalidRequest"

# Tag keys written by camsort; everything else on the object is preserved.
TAG_PREFIX = "camsort-"
MAX_TAGS_PER_OBJECT = 10  # S3's limit
_TAG_VALUE_FORBIDDEN = re.compile(r"[^\w .:/=+\-@]", re.UNICODE)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_transient(exc: BaseException) -> bool:
    """Throttling, 5xx, timeouts, connection failures: retrying later can succeed."""
    if isinstance(exc, ConnectionError | HTTPClientError):
        # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError,
        # ResponseStreamingError (the body broke off mid-read)...
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return error_code(exc) in TRANSIENT_ERROR_CODES or status >= 500 or status == 429
    return False


@dataclass(frozen=True)
class StoredFrame:
    """The bytes of one object version and what S3 said about them."""

    data: bytes
    etag: str  # without quotes
    version_id: str | None
    last_modified: datetime
    content_length: int
    # GetObject's x-amz-tagging-count: S3 leaves it out when the object has no tags.
    tag_count: int = 0


@dataclass(frozen=True)
class ObjectInfo:
    etag: str
    version_id: str | None
    size: int
    last_modified: datetime


class FrameStore:
    """Frames in S3: ``get_frame`` and ``tag_frame``."""

    def __init__(self, s3_client: Any):
        self._s3 = s3_client

    @property
    def s3_client(self) -> Any:
        return self._s3

    # GetObject with VersionId needs s3:GetObjectVersion (IAM's name for the versioned read).
    @requires("s3:GetObject", "s3:GetObjectVersion", resource="frames")
    def get_frame(
        self,
        bucket: str,
        key: str,
        etag: str | None = None,
        version_id: str | None = None,
        max_bytes: int | None = None,
    ) -> StoredFrame:
        """Read exactly the object the event announced.

        ``etag`` -> ``IfMatch`` and ``version_id`` -> ``VersionId``: a frame overwritten or
        deleted since the event raises ``SupersededObjectError`` instead of silently
        classifying other bytes. ``max_bytes`` is checked against ``Content-Length`` before
        the body is read (the event's size is checked earlier when the event has one).
        """
        uri = f"s3://{bucket}/{key}"
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if etag:
            params["IfMatch"] = f'"{etag}"'
        if version_id:
            params["VersionId"] = version_id
        try:
            response = self._s3.get_object(**params)
        except ClientError as exc:
            code = error_code(exc)
            if code in SUPERSEDED_ERROR_CODES:
                raise SupersededObjectError(
                    f"{uri}: the object was overwritten or deleted before it was read ({code}); "
                    "the newer upload is classified by its own event"
                ) from exc
            if code == ARCHIVED_ERROR_CODE:
                raise ArchivedObjectError(
                    f"{uri}: S3 will not serve it (InvalidObjectState): the object is in an archive storage "
                    "class; restore it (or upload frames to a Standard class) and upload it again"
                ) from exc
            if code == CUSTOMER_KEY_ERROR_CODE:
                raise CustomerKeyEncryptedError(
                    f"{uri}: S3 will not serve it without the customer's key (InvalidRequest): the object is "
                    "encrypted with SSE-C; upload frames with SSE-S3 or SSE-KMS instead"
                ) from exc
            raise self._error(exc, uri, "GetObject") from exc
        except BotoCoreError as exc:
            raise self._error(exc, uri, "GetObject") from exc
        body = response["Body"]
        length = int(response.get("ContentLength", 0))
        try:
            if max_bytes is not None and length > max_bytes:
                raise TooManyBytesError(
                    f"{uri}: {length} bytes is above the limit of {max_bytes}; "
                    f"upload smaller frames or raise {env.MAX_BYTES}"
                )
            data = body.read()
        except BotoCoreError as exc:
            raise self._error(exc, uri, "GetObject (reading the body)") from exc
        finally:
            body.close()
        return StoredFrame(
            data=data,
            etag=response["ETag"].strip('"'),
            version_id=response.get("VersionId"),
            last_modified=response["LastModified"],
            content_length=length,
            tag_count=int(response.get("TagCount") or 0),
        )

    # HeadObject has no action of its own: IAM checks s3:GetObject (s3:GetObjectVersion with VersionId).
    @requires("s3:GetObject", "s3:GetObjectVersion", resource="frames")
    def head_frame(self, bucket: str, key: str, version_id: str | None = None) -> ObjectInfo:
        """ETag, version and size of an object, for events that do not carry them (Batch Operations)."""
        uri = f"s3://{bucket}/{key}"
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        try:
            response = self._s3.head_object(**params)
        except ClientError as exc:
            # HEAD has no body, so a missing key/version only shows as a 404 status.
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if error_code(exc) in SUPERSEDED_ERROR_CODES or status == 404 or error_code(exc) == "404":
                raise SupersededObjectError(
                    f"{uri}: the object no longer exists ({error_code(exc)})"
                ) from exc
            raise self._error(exc, uri, "HeadObject") from exc
        except BotoCoreError as exc:
            raise self._error(exc, uri, "HeadObject") from exc
        return ObjectInfo(
            etag=response["ETag"].strip('"'),
            version_id=response.get("VersionId"),
            size=int(response.get("ContentLength", 0)),
            last_modified=response["LastModified"],
        )

    @requires(
        "s3:GetObjectTagging",
        "s3:GetObjectVersionTagging",
        "s3:PutObjectTagging",
        "s3:PutObjectVersionTagging",
        resource="frames",
    )
    def tag_frame(
        self,
        bucket: str,
        key: str,
        tags: dict[str, str],
        version_id: str | None = None,
        *,
        keep_ours: bool = False,
        tag_count: int | None = None,
    ) -> bool:
        """Merge ``tags`` (keys prefixed ``camsort-``) into the object's tags.

        Merge, not replace: PutObjectTagging replaces the whole set, and tags set by the
        uploader (lifecycle or retention rules often key on them) must survive. That costs one
        GetObjectTagging, skipped when ``tag_count`` (GetObject's ``TagCount`` of this very
        version, see :class:`StoredFrame`) says the object has no tags; None: ask S3.
        camsort's own earlier tags are dropped (a new answer replaces the old one) unless
        ``keep_ours``: then only the keys in ``tags`` are replaced (the review mark is added
        beside the live label). Returns False, leaving the object untouched, when the merged
        set would exceed S3's 10 tags; the result table stays the record of truth.
        """
        uri = f"s3://{bucket}/{key}"
        version = {"VersionId": version_id} if version_id else {}
        try:
            if tag_count == 0:
                existing = []
            else:
                existing = self._s3.get_object_tagging(Bucket=bucket, Key=key, **version)["TagSet"]
            kept = [
                tag
                for tag in existing
                if tag["Key"] not in tags and (keep_ours or not tag["Key"].startswith(TAG_PREFIX))
            ]
            ours = [{"Key": name, "Value": tag_value(value)} for name, value in sorted(tags.items())]
            if len(kept) + len(ours) > MAX_TAGS_PER_OBJECT:
                return False
            self._s3.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": kept + ours}, **version)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, uri, "PutObjectTagging") from exc
        return True

    @staticmethod
    def _error(exc: Exception, uri: str, operation: str) -> Exception:
        if is_transient(exc):
            return TransientError(f"{uri}: {operation} failed transiently ({exc}); it will be retried")
        return StorageError(
            f"{uri}: {operation} failed ({exc}); check the bucket, the key and the permissions"
        )


def tag_value(value: str) -> str:
    """S3 tag values allow letters, digits, spaces and ``+ - = . _ : / @``, up to 256 chars."""
    return _TAG_VALUE_FORBIDDEN.sub("_", value)[:256]
