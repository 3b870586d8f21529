"""DynamoDB adapter for the review queue table (schema: docs/ARCHITECTURE.md, "Review table").

Why a table of its own rather than a ``review`` attribute + sparse GSI on the results table:
the queue has its own life (entries are exported and deleted once labelled; quota counters
expire by TTL), scans of it stay as small as the queue, and the results table's key and
items stay exactly "one item per frame" for the audit and the backfill.

Items, partitioned by camera (so ``review stats`` and the export read per camera):

* ``camera_id`` = camera, ``entry`` = ``frame#<captured_at>#<object_id>@<object_version>``: a frame to
  review, with the live model's guess (label, top_label, confidence, probabilities), reason
  and where the object is (bucket, key, version_id);
* ``entry`` = ``quota#<UTC hour>``: ``marked`` counts the frames marked in that hour; an
  UpdateItem conditional on ``marked < limit`` takes one, atomically across containers.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from functions import env
from functions.iam import requires
from functions.stores.dynamo import conditional_write, table_error
from functions.stores.results import serialize_item

PARTITION_KEY = "camera_id"
SORT_KEY = "entry"
FRAME_ENTRY = "frame#"
QUOTA_ENTRY = "quota#"
TTL_ATTRIBUTE = "expires_at"


def frame_entry(item: dict[str, Any]) -> str:
    return f"{FRAME_ENTRY}{item.get('captured_at') or ''}#{item['object_id']}@{item['object_version']}"


class ReviewQueue:
    def __init__(self, table_name: str, dynamodb_client: Any):
        self.table_name = table_name
        self._ddb = dynamodb_client
        # (camera, window) whose quota this container found used up. A refused conditional
        # UpdateItem is billed a write like an accepted one: an unsure model would otherwise pay
        # one per frame for the rest of the hour, to be told no again.
        self._used_up: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    @requires("dynamodb:UpdateItem", resource="review-table")
    def take_quota(self, camera_id: str, window: str, limit: int, expires: datetime) -> bool:
        """Count one mark against ``camera_id``'s quota for ``window``; False when it is used up
        (without a request once this container has been told so for that window)."""
        with self._lock:
            if (camera_id, window) in self._used_up:
                return False
        where = f"{self.table_name}/{camera_id}/{QUOTA_ENTRY}{window}"
        taken = conditional_write(
            lambda: self._ddb.update_item(
                TableName=self.table_name,
                Key={PARTITION_KEY: {"S": camera_id}, SORT_KEY: {"S": QUOTA_ENTRY + window}},
                UpdateExpression="ADD #n :one SET #ttl = :ttl",
                ConditionExpression="attribute_not_exists(#n) OR #n < :limit",
                ExpressionAttributeNames={"#n": "marked", "#ttl": TTL_ATTRIBUTE},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limit)},
                    ":ttl": {"N": str(int(expires.timestamp()))},
                },
            ),
            lambda exc: self._error(exc, where, "UpdateItem"),
        )
        if not taken:
            with self._lock:
                self._used_up = {key for key in self._used_up if key[1] >= window}  # past hours go
                self._used_up.add((camera_id, window))
        return taken

    @requires("dynamodb:UpdateItem", resource="review-table")
    def release_quota(self, camera_id: str, window: str) -> bool:
        """Give back one mark taken by :meth:`take_quota` whose entry was not added; False when
        the counter is already at 0 (nothing to give back). A slot given back by another
        container to a window this one found used up is not seen here before the next hour."""
        with self._lock:
            self._used_up.discard((camera_id, window))
        where = f"{self.table_name}/{camera_id}/{QUOTA_ENTRY}{window}"
        return conditional_write(
            lambda: self._ddb.update_item(
                TableName=self.table_name,
                Key={PARTITION_KEY: {"S": camera_id}, SORT_KEY: {"S": QUOTA_ENTRY + window}},
                UpdateExpression="ADD #n :minus_one",
                ConditionExpression="#n > :zero",
                ExpressionAttributeNames={"#n": "marked"},
                ExpressionAttributeValues={":minus_one": {"N": "-1"}, ":zero": {"N": "0"}},
            ),
            lambda exc: self._error(exc, where, "UpdateItem"),
        )

    @requires("dynamodb:PutItem", resource="review-table")
    def add_entry(self, item: dict[str, Any]) -> bool:
        """Queue one frame (a result item plus ``review_reason``); False when already queued."""
        entry = {PARTITION_KEY: item["camera_id"], SORT_KEY: frame_entry(item)} | {
            name: item.get(name)
            for name in (
                "object_id", "object_version", "bucket", "key", "version_id", "etag", "captured_at",
                "label", "top_label", "confidence", "probabilities", "model_version", "model_sha256",
                "review_reason", "marked_at", "region", "model_name",
            )
        }  # fmt: skip
        where = f"{self.table_name}/{entry[PARTITION_KEY]}/{entry[SORT_KEY]}"
        return conditional_write(
            lambda: self._ddb.put_item(
                TableName=self.table_name,
                Item=serialize_item(entry),
                ConditionExpression="attribute_not_exists(#pk)",
                ExpressionAttributeNames={"#pk": PARTITION_KEY},
            ),
            lambda exc: self._error(exc, where, "PutItem"),
        )

    @staticmethod
    def _error(exc: Exception, where: str, operation: str) -> Exception:
        return table_error(
            exc, where, operation, f"the review table ({env.REVIEW_TABLE}; key camera_id, entry)"
        )
