"""The project's error classes.

Errors are classified by *type*, never by message text. Three families matter to the
function, because each one is handled differently:

* ``BadInputError``: the frame itself is unusable. The frame gets a ``rejected`` result
  with ``reason`` (the class's ``reason`` code) and the message is acknowledged: retrying
  cannot help.
* ``TransientError``: the world hiccupped (throttling, 5xx, timeouts). The message is
  reported in ``batchItemFailures`` and SQS redelivers it; after maxReceiveCount it lands
  in the DLQ.
* everything else (``CamsortError`` subclasses such as ``ModelIntegrityError`` and plain
  bugs) is logged with the key and surfaces as a failure, never swallowed.
"""

from __future__ import annotations


class CamsortError(Exception):
    """Base class of every error camsort raises on purpose."""


# --- bad input: rejected, never retried -------------------------------------------------


class BadInputError(CamsortError):
    """The object cannot be classified; retrying will not change that."""

    #: Short machine-readable code stored in the result's ``reason``.
    reason = "bad_input"


class EmptyImageError(BadInputError):
    reason = "empty"


class NotAnImageError(BadInputError):
    """Neither JPEG nor PNG (judged from the bytes, not the key's extension)."""

    reason = "not_jpeg_or_png"


class TruncatedImageError(BadInputError):
    """A JPEG or PNG whose data ends early or is corrupt."""

    reason = "truncated_or_corrupt"


class TooManyBytesError(BadInputError):
    """Larger than the configured byte limit (checked before any download)."""

    reason = "too_many_bytes"


class TooManyPixelsError(BadInputError):
    """Width x height above the configured pixel limit (decompression-bomb guard)."""

    reason = "too_many_pixels"


class UnexpectedKeyError(BadInputError):
    """The key does not match the configured prefix / camera pattern."""

    reason = "unexpected_key"


class SupersededObjectError(BadInputError):
    """The object was overwritten or deleted before this event was processed.

    Its content is gone, so the frame can only be recorded as rejected; the newer
    upload has its own event and its own result.
    """

    reason = "superseded"


class TooMuchDecodeMemoryError(BadInputError):
    """Decoding would need more memory than one frame may take (functions/frames/decode_cost.py)."""

    reason = "too_much_decode_memory"


class DecoderCrashError(BadInputError):
    """The frame killed the process while it was being decoded, twice: it is not decoded again."""

    reason = "decoder_crash"


class CustomerKeyEncryptedError(BadInputError):
    """Encrypted with a customer-provided key (SSE-C): S3 serves it only to whoever holds the key."""

    reason = "encrypted_with_customer_key"


class ArchivedObjectError(BadInputError):
    """In an archive storage class (GLACIER, DEEP_ARCHIVE, ...): not readable until restored."""

    reason = "archived_storage_class"


# --- transient: retried through SQS, then DLQ -------------------------------------------


class TransientError(CamsortError):
    """Throttling, 5xx, timeouts, connection errors: worth retrying."""


# --- configuration and artifacts: fail loudly ---------------------------------------------


class ConfigurationError(CamsortError):
    """A missing or malformed setting (environment variable, CLI option)."""


class ModelArtifactError(CamsortError):
    """The model directory is missing a file or its manifest is malformed."""


class ModelIntegrityError(ModelArtifactError):
    """model.onnx does not hash to the sha256 recorded in manifest.json."""


class ModelNotPinnedError(ModelIntegrityError):
    """model.onnx is not the model the deployment pins (CAMSORT_MODEL_SHA256), or the pin of
    whatever opens it (a shadow candidate's, a backfill job's)."""

    def __init__(self, message: str, *, actual: str = "", pinned: str = ""):
        super().__init__(message)
        self.actual, self.pinned = actual, pinned


class StorageError(CamsortError):
    """A non-transient S3 failure (access denied, missing bucket, ...)."""


class ResultsTableError(CamsortError):
    """A non-transient DynamoDB failure (missing table, validation error, ...)."""
