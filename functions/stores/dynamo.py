"""What every DynamoDB adapter does around its calls, in one place.

A conditional write has three answers: written, refused by its condition (a duplicate, an older
event, a lost race, a spent quota: the caller decides what that means), or failed. Failures
become the adapter's own error through ``on_error``, and :func:`table_error` is that mapping:
transient or not (by type and code), a missing table said as such.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.errors import CamsortError, ResultsTableError, TransientError
from functions.stores.storage import error_code, is_transient

CONDITION_FAILED = "ConditionalCheckFailedException"
TABLE_MISSING = "ResourceNotFoundException"


def table_error(
    exc: Exception, where: str, operation: str, check: str, kind: type[CamsortError] = ResultsTableError
) -> CamsortError:
    """A failed DynamoDB call as the adapter's error; ``check`` names the setting to look at."""
    if is_transient(exc):
        return TransientError(f"{where}: DynamoDB {operation} failed transiently ({exc}); it will be retried")
    if isinstance(exc, ClientError) and error_code(exc) == TABLE_MISSING:
        return kind(f"{where}: DynamoDB {operation}: no such table; check {check} (was its stage created?)")
    return kind(
        f"{where}: DynamoDB {operation} failed ({exc}); check {check}, its key schema and the permissions"
    )


def conditional_write(write: Callable[[], Any], on_error: Callable[[Exception], Exception]) -> bool:
    """Run ``write``: True when it wrote, False when its condition failed; else raise ``on_error(exc)``."""
    try:
        write()
    except ClientError as exc:
        if error_code(exc) == CONDITION_FAILED:
            return False
        raise on_error(exc) from exc
    except BotoCoreError as exc:
        raise on_error(exc) from exc
    return True
