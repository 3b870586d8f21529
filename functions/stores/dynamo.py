"""What every DynamoDB adapter does around a conditional write, in one place.

A conditional write has three answers: written, refused by its condition (a duplicate, an older
event, a lost race, a spent quota: the caller decides what that means), or failed. Failures
become the adapter's own error through ``on_error`` (transient or not, by type and code).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.stores.storage import error_code

CONDITION_FAILED = "ConditionalCheckFailedException"


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
