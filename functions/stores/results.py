"""DynamoDB adapter for the results table (schema: docs/ARCHITECTURE.md, "Results table").

One item per (object_id = "<bucket>/<key>", object_version = versionId or ETag). Writes are
conditional, ``attribute_not_exists(object_id) OR sequencer < :seq``, so a duplicate delivery
or an older event never overwrites a newer result. Numbers are stored as Decimal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from functions import env
from functions.frames.keys import format_timestamp
from functions.iam import requires
from functions.stores.dynamo import conditional_write, table_error

PARTITION_KEY = "object_id"
SORT_KEY = "object_version"
CAMERA_INDEX = "by_camera"
CAMERA_KEY = "camera_id"
CAPTURED_KEY = "captured_at"
# BatchGetItem takes at most 100 keys per call.
_BATCH_GET_LIMIT = 100

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def object_id(bucket: str, key: str) -> str:
    return f"{bucket}/{key}"


MODEL_VERSION_SEPARATOR = "#"


def result_sort_key(object_version: str, model_version: str | None = None) -> str:
    """The item's sort key: the live result's is the object version itself; another model
    version's result (a backfill with that model) sits beside it at ``<object_version>#<model_version>``.

    Same partition (one frame's results stay together, one Query reads them all), the live
    key unchanged (everything keyed on ``(object_id, object_version)`` keeps working), and
    S3 versionIds and ETags never contain ``#``, so the two kinds cannot collide.
    """
    if not model_version:
        return object_version
    return f"{object_version}{MODEL_VERSION_SEPARATOR}{model_version}"


DECODE_MARK_SUFFIX = "#decode-attempts"


def decode_mark_key(frame: dict[str, Any]) -> dict[str, Any]:
    """The key of a frame's decode-attempt mark: beside its result, never one of its result keys."""
    return {
        PARTITION_KEY: {"S": frame[PARTITION_KEY]},
        SORT_KEY: {"S": f"{frame[SORT_KEY]}{DECODE_MARK_SUFFIX}"},
    }


def to_dynamo_value(value: Any) -> Any:
    """Python values -> what boto3's serializer accepts: floats become Decimal (finite only)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} cannot be stored in DynamoDB")
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: to_dynamo_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_dynamo_value(v) for v in value]
    return value


def serialize_item(item: dict[str, Any]) -> dict[str, Any]:
    return {
        name: _serializer.serialize(to_dynamo_value(value))
        for name, value in item.items()
        if value is not None
    }


def deserialize_item(item: dict[str, Any]) -> dict[str, Any]:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def frame_versions(item: dict[str, Any]) -> list[str]:
    """The versions a frame's results may be keyed under: its sort key, version id, ETag (unique, in order)."""
    values = (item.get(SORT_KEY), item.get("version_id"), item.get("etag"))
    return list(dict.fromkeys(v for v in values if v))


class ResultsTable:
    def __init__(self, table_name: str, dynamodb_client: Any):
        self.table_name = table_name
        self._ddb = dynamodb_client

    @requires("dynamodb:PutItem", resource="results-table")
    def put_result(self, item: dict[str, Any], *, same_event_overwrites: bool = False) -> bool:
        """Write ``item`` unless an equal or newer event already wrote it.

        Returns False when the condition failed (duplicate or older event): acknowledged,
        not an error. ``same_event_overwrites``: an equal sequencer overwrites too (a region's
        item, which its frame's redelivery completes: functions/frames/region_batch.py).
        """
        where = f"{self.table_name}/{item.get(PARTITION_KEY)}@{item.get(SORT_KEY)}"
        order = "<=" if same_event_overwrites else "<"
        return conditional_write(
            lambda: self._ddb.put_item(
                TableName=self.table_name,
                Item=serialize_item(item),
                ConditionExpression=f"attribute_not_exists(#pk) OR #seq {order} :seq",
                ExpressionAttributeNames={"#pk": PARTITION_KEY, "#seq": "sequencer"},
                ExpressionAttributeValues={":seq": {"S": item.get("sequencer", "")}},
            ),
            lambda exc: self._error(exc, where, "PutItem"),
        )

    @requires("dynamodb:UpdateItem", resource="results-table")
    def record_shadow(
        self, object_id: str, object_version: str, sequencer: str, attributes: dict[str, Any]
    ) -> bool:
        """Add the candidate's answer (``shadow_*`` attributes) to an existing live result.

        Conditional on the item existing with this ``sequencer``: the answer is only attached
        to the result of the frame the candidate saw. False when that result is not there.
        """
        where = f"{self.table_name}/{object_id}@{object_version}"
        values = serialize_item(attributes)
        names = {f"#a{i}": name for i, name in enumerate(values)}
        return conditional_write(
            lambda: self._ddb.update_item(
                TableName=self.table_name,
                Key={PARTITION_KEY: {"S": object_id}, SORT_KEY: {"S": object_version}},
                UpdateExpression="SET " + ", ".join(f"#a{i} = :a{i}" for i in range(len(values))),
                ConditionExpression="attribute_exists(#pk) AND #seq = :seq",
                ExpressionAttributeNames=names | {"#pk": PARTITION_KEY, "#seq": "sequencer"},
                ExpressionAttributeValues={f":a{i}": value for i, value in enumerate(values.values())}
                | {":seq": {"S": sequencer}},
            ),
            lambda exc: self._error(exc, where, "UpdateItem"),
        )

    @requires("dynamodb:UpdateItem", resource="results-table")
    def start_decode(self, frame: dict[str, Any]) -> int:
        """Mark an isolated decode of ``frame`` as started; the number of marked decodes so far.

        ``frame`` holds the result item's key fields (and ``key``/``bucket``/``etag``, so the
        mark names its object). The mark is its own item, ``<sort key>#decode-attempts``, out of
        the camera index and of every result look-up; :meth:`finish_decode` removes it, so a
        mark still there is a decode that killed its process.
        """
        key = decode_mark_key(frame)
        where = f"{self.table_name}/{key[PARTITION_KEY]['S']}@{key[SORT_KEY]['S']}"
        fields = {name: str(frame[name]) for name in ("key", "bucket", "etag") if frame.get(name)}
        assignments = ", ".join(f"#{name} = :{name}" for name in fields)
        try:
            response = self._ddb.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression="ADD attempts :one" + (f" SET {assignments}" if fields else ""),
                ExpressionAttributeValues={":one": {"N": "1"}}
                | {f":{name}": {"S": value} for name, value in fields.items()},
                ReturnValues="UPDATED_NEW",
                **({"ExpressionAttributeNames": {f"#{name}": name for name in fields}} if fields else {}),
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, where, "UpdateItem") from exc
        return int(response["Attributes"]["attempts"]["N"])

    @requires("dynamodb:DeleteItem", resource="results-table")
    def finish_decode(self, frame: dict[str, Any]) -> None:
        """The isolated decode of ``frame`` ended (decoded or refused): drop its mark."""
        key = decode_mark_key(frame)
        try:
            self._ddb.delete_item(TableName=self.table_name, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, f"{self.table_name}/{key[PARTITION_KEY]['S']}", "DeleteItem") from exc

    @requires("dynamodb:GetItem", resource="results-table")
    def get(self, object_id: str, object_version: str) -> dict[str, Any] | None:
        where = f"{self.table_name}/{object_id}@{object_version}"
        try:
            response = self._ddb.get_item(
                TableName=self.table_name,
                Key={PARTITION_KEY: {"S": object_id}, SORT_KEY: {"S": object_version}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, where, "GetItem") from exc
        item = response.get("Item")
        return deserialize_item(item) if item else None

    @requires("dynamodb:BatchGetItem", resource="results-table")
    def existing_sequencers(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """``{(object_id, object_version): sequencer}`` for the keys that already have a result
        (``camsort backfill --only-missing``: which frames still lack one)."""
        found = self.get_items(keys, attributes=(PARTITION_KEY, SORT_KEY, "sequencer"))
        return {key: item.get("sequencer", "") for key, item in found.items()}

    @requires("dynamodb:BatchGetItem", resource="results-table")
    def existing_results(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """``{(object_id, object_version): item}`` for the keys that already have a result.

        One BatchGetItem round trip per 100 keys (plus retries of unprocessed keys): the
        look-up that lets a redelivered message skip the download and the inference, and
        complete the side effects of the result it finds. Whole items: a read costs the
        item's size whatever a projection leaves out, and the side effects need the answer.
        """
        return self.get_items(keys)

    @requires("dynamodb:BatchGetItem", resource="results-table")
    def get_items(
        self, keys: Iterable[tuple[str, str]], attributes: Iterable[str] | None = None
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """``{(object_id, object_version): item}`` for the keys that have a result (BatchGetItem).

        ``attributes`` limits what is read (a projection); None reads whole items.
        """
        unique = list(dict.fromkeys(keys))
        projection: dict[str, Any] = {}
        if attributes is not None:
            names = {f"#a{i}": name for i, name in enumerate(dict.fromkeys(attributes))}
            projection = {"ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for start in range(0, len(unique), _BATCH_GET_LIMIT):
            request: dict[str, Any] | None = {
                self.table_name: {
                    "Keys": [
                        {PARTITION_KEY: {"S": oid}, SORT_KEY: {"S": version}}
                        for oid, version in unique[start : start + _BATCH_GET_LIMIT]
                    ],
                    "ConsistentRead": True,
                    **projection,
                }
            }
            while request:
                try:
                    response = self._ddb.batch_get_item(RequestItems=request)
                except (ClientError, BotoCoreError) as exc:
                    raise self._error(exc, self.table_name, "BatchGetItem") from exc
                for raw in response.get("Responses", {}).get(self.table_name, []):
                    item = deserialize_item(raw)
                    found[(item[PARTITION_KEY], item[SORT_KEY])] = item
                request = response.get("UnprocessedKeys") or None
        return found

    def model_results(self, live_items: Iterable[dict[str, Any]], model_version: str) -> list[dict[str, Any]]:
        """For each live item, the result of ``model_version`` for the same frame (when it has one).

        A live item already from ``model_version`` is its own answer; the others are looked up
        at :func:`result_sort_key` with one BatchGetItem per 100 frames, under the frame's
        version id and its ETag both: an item's key is whichever its event carried (moto's
        notifications omit versionId, a Batch Operations task on a versioned bucket has it).
        Order follows ``live_items`` (the camera index order).
        """
        items = list(live_items)
        wanted = {
            item_key: [(item[PARTITION_KEY], result_sort_key(v, model_version)) for v in frame_versions(item)]
            for item_key, item in enumerate(items)
            if item.get("model_version") != model_version
        }
        found = self.get_items(key for keys in wanted.values() for key in keys)
        answers = []
        for index, item in enumerate(items):
            if item.get("model_version") == model_version:
                answers.append(item)
                continue
            other = next((found[k] for k in wanted[index] if k in found), None)
            if other is not None:
                # The versioned item is not in the camera index: show it with the frame's camera/time.
                answers.append(
                    {CAMERA_KEY: item.get(CAMERA_KEY), CAPTURED_KEY: item.get(CAPTURED_KEY)} | other
                )
        return answers

    def query_camera(
        self,
        camera_id: str,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Results of one camera, oldest capture first, optionally within [start, end]."""
        return list(self.iter_camera(camera_id, start, end, limit))

    @requires("dynamodb:Query", resource="results-index")
    def iter_camera(
        self,
        camera_id: str,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        names = {"#cam": CAMERA_KEY}
        values: dict[str, Any] = {":cam": {"S": camera_id}}
        condition = "#cam = :cam"
        low, high = _timestamp(start), _timestamp(end)
        if low or high:
            names["#at"] = CAPTURED_KEY
        if low and high:
            condition += " AND #at BETWEEN :low AND :high"
            values.update({":low": {"S": low}, ":high": {"S": high}})
        elif low:
            condition += " AND #at >= :low"
            values[":low"] = {"S": low}
        elif high:
            condition += " AND #at <= :high"
            values[":high"] = {"S": high}
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": CAMERA_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        returned = 0
        while True:
            if limit is not None:
                params["Limit"] = limit - returned
            try:
                response = self._ddb.query(**params)
            except (ClientError, BotoCoreError) as exc:
                raise self._error(exc, f"{self.table_name}/{CAMERA_INDEX}[{camera_id}]", "Query") from exc
            for raw in response.get("Items", []):
                yield deserialize_item(raw)
                returned += 1
                if limit is not None and returned >= limit:
                    return
            last = response.get("LastEvaluatedKey")
            if not last:
                return
            params["ExclusiveStartKey"] = last

    @staticmethod
    def _error(exc: Exception, where: str, operation: str) -> Exception:
        return table_error(exc, where, operation, f"the table name ({env.RESULTS_TABLE})")


def _timestamp(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return format_timestamp(value)
