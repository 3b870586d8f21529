"""Which AWS operation an HTTP request is, from the request alone (for counting what a run costs).

:class:`RequestCounter` is what the local proxy (infra/local/faults.py) feeds every request it
relays to; bench/requests.py turns the counts into requests per frame and a price.

The JSON protocols name it: ``X-Amz-Target: DynamoDB_20120810.PutItem`` (DynamoDB),
``AmazonSQS.ReceiveMessage`` (SQS), ``AWSEvents.PutEvents`` (EventBridge). SQS's older query
protocol names it as ``Action=`` in the form body. S3's REST protocol says it with the method,
whether the path names an object, and the sub-resource in the query (``?tagging``,
``?list-type=2``, ``?delete``). Only the operations this project makes are named for S3; any
other comes back as ``s3:<METHOD> <object|bucket>?<sub-resources>`` so it is still counted,
never dropped.
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from typing import Any

# X-Amz-Target prefixes -> the service name used in IAM actions and in the price table.
_TARGET_SERVICES = {"DynamoDB_": "dynamodb", "AmazonSQS": "sqs", "AWSEvents": "events"}

# (method, names an object, sub-resource) -> S3 operation; sub-resource "" = none.
_S3_OPERATIONS = {
    ("GET", True, ""): "GetObject",
    ("HEAD", True, ""): "HeadObject",
    ("PUT", True, ""): "PutObject",
    ("POST", True, ""): "PostObject",
    ("DELETE", True, ""): "DeleteObject",
    ("GET", True, "tagging"): "GetObjectTagging",
    ("PUT", True, "tagging"): "PutObjectTagging",
    ("GET", False, "list-type"): "ListObjectsV2",
    ("GET", False, ""): "ListObjects",
    ("GET", False, "versions"): "ListObjectVersions",
    ("POST", False, "delete"): "DeleteObjects",
    ("POST", False, ""): "PostObject",  # a browser-form upload goes to the bucket
    ("HEAD", False, ""): "HeadBucket",
}
_S3_SUBRESOURCES = ("tagging", "list-type", "versions", "delete")


def operation_name(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> str:
    """``service:Operation`` of one request; ``headers`` with lower-cased names."""
    target = headers.get("x-amz-target", "")
    if target:
        prefix, _, operation = target.partition(".")
        service = next((name for start, name in _TARGET_SERVICES.items() if prefix.startswith(start)), prefix)
        return f"{service}:{operation}"
    content_type = headers.get("content-type", "")
    if method == "POST" and content_type.startswith("application/x-www-form-urlencoded"):
        action = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action")
        if action:  # the query protocol (SQS before JSON, IAM, STS): Action= in the body
            return f"{_query_service(headers)}:{action[0]}"
    return f"s3:{_s3_operation(method, path)}"


def _query_service(headers: dict[str, str]) -> str:
    """The service of a query-protocol call, from the SigV4 credential scope (…/region/sqs/aws4_request)."""
    authorization = headers.get("authorization", "")
    scope = authorization.partition("Credential=")[2].split(",")[0].split("/")
    return scope[3] if len(scope) >= 5 else "unknown"


def _s3_operation(method: str, path: str) -> str:
    parts = urllib.parse.urlsplit(path)
    names_object = "/" in parts.path.lstrip("/") and not parts.path.endswith("/")
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    sub = next((name for name in _S3_SUBRESOURCES if name in query), "")
    known = _S3_OPERATIONS.get((method, names_object, sub))
    if known:
        return known
    where = "object" if names_object else "bucket"
    return f"{method} {where}" + (f"?{'&'.join(sorted(query))}" if query else "")


@dataclass(frozen=True)
class DynamoDBWrite:
    """One item written: the operation, the table, its key, and the whole item when the request carries it."""

    operation: str  # PutItem | UpdateItem | DeleteItem (a BatchWriteItem counts per entry)
    table: str
    key: dict[str, Any] | None
    item: dict[str, Any] | None  # PutItem's new item; None: the size must be read from the table


class RequestCounter:
    """Requests by (``service:Operation``, scope), EventBridge entries, DynamoDB writes (thread-safe).

    The scope says what a request was about: the table (DynamoDB), the queue (SQS), the bus
    (EventBridge), the key's top folder (S3: ``frames`` or ``models``), so that a model download
    at cold start is not mistaken for a frame's GetObject.
    """

    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()
        self.event_entries: Counter[str] = Counter()  # PutEvents bills per entry, not per request
        self.dynamodb_writes: list[DynamoDBWrite] = []
        self._lock = threading.Lock()

    def record(self, method: str, path: str, headers: dict[str, str], body: bytes) -> str:
        operation = operation_name(method, path, headers, body)
        payload = _json(body) if headers.get("x-amz-target") else {}
        scope = _scope(operation, path, payload)
        writes = _dynamodb_writes(operation, payload)
        with self._lock:
            self.requests[(operation, scope)] += 1
            if operation == "events:PutEvents":
                self.event_entries[scope] += len(payload.get("Entries", []))
            self.dynamodb_writes.extend(writes)
        return operation

    def snapshot(self) -> RequestCounter:
        copy = RequestCounter()
        with self._lock:
            copy.requests = Counter(self.requests)
            copy.event_entries = Counter(self.event_entries)
            copy.dynamodb_writes = list(self.dynamodb_writes)
        return copy


def _json(body: bytes) -> dict[str, Any]:
    try:
        loaded = json.loads(body or b"{}")
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _scope(operation: str, path: str, payload: dict[str, Any]) -> str:
    service = operation.partition(":")[0]
    if service == "dynamodb":
        return payload.get("TableName") or ",".join(sorted(payload.get("RequestItems", {})))
    if service == "sqs":
        return str(payload.get("QueueUrl", "")).rstrip("/").rpartition("/")[2]
    if service == "events":
        entries = payload.get("Entries") or [{}]
        return str(entries[0].get("EventBusName", "default"))
    parts = urllib.parse.urlsplit(path).path.lstrip("/").split("/")
    return urllib.parse.unquote(parts[1]) if len(parts) > 2 else ""  # bucket/<top folder>/...


def _dynamodb_writes(operation: str, payload: dict[str, Any]) -> list[DynamoDBWrite]:
    service, _, name = operation.partition(":")
    if service != "dynamodb":
        return []
    if name in ("PutItem", "UpdateItem", "DeleteItem"):
        item = payload.get("Item")
        return [DynamoDBWrite(name, payload.get("TableName", ""), payload.get("Key"), item)]
    if name != "BatchWriteItem":
        return []
    return [
        DynamoDBWrite(
            "PutItem" if "PutRequest" in entry else "DeleteItem",
            table,
            entry.get("DeleteRequest", {}).get("Key"),
            entry.get("PutRequest", {}).get("Item"),
        )
        for table, entries in payload.get("RequestItems", {}).items()
        for entry in entries
    ]
