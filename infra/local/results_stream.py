"""The results table's stream -> the ``exportResults`` handler, locally.

On AWS a Lambda event source mapping reads the table's DynamoDB stream and invokes the function
with batches (``{"Records": [...]}``, each record as GetRecords returns it plus ``eventSource``
and ``eventSourceARN``). moto has DynamoDB Streams but no event source mappings, so
:func:`pump_results_stream` plays that part: it reads every shard of the stream from
TRIM_HORIZON and calls the very same handler with Lambda-shaped batches. Re-running it exports
the same records again; the queries keep each result's latest row (functions/archive/results_export.py),
so a re-run changes no figure.

The stream reads are declared here (``@requires``): they are the exportResults role's
``results-stream`` grants (infra/deploy/policy.py ``results_export_permissions``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from functions.iam import requires

BATCH = 1000


@requires(
    "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", resource="results-stream"
)
def pump_results_stream(
    streams: Any, stream_arn: str, invoke: Callable[[dict[str, Any]], Any], *, region: str, batch: int = BATCH
) -> int:
    """Every record of the stream, in order per shard, through ``invoke``; returns the record count."""
    description = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]
    total = 0
    for shard in description["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            response = streams.get_records(ShardIterator=iterator, Limit=batch)
            records = response.get("Records", [])
            if not records:
                break
            shaped = [
                {**r, "eventSource": "aws:dynamodb", "eventSourceARN": stream_arn, "awsRegion": region}
                for r in records
            ]
            invoke({"Records": shaped})
            total += len(records)
            iterator = response.get("NextShardIterator")
    return total


# ListStreams names no resource in IAM (it lists the account's streams): "*" is its only form.
@requires("dynamodb:ListStreams", resource="any-stream")
def results_stream_arn(streams: Any, table: str) -> str:
    """The results table's latest stream (the local stack enables NEW_IMAGE on it)."""
    found = streams.list_streams(TableName=table).get("Streams", [])
    if not found:
        from functions.errors import ConfigurationError

        raise ConfigurationError(
            f"{table}: the results table has no stream; recreate the local stack (`camsort demo`)"
        )
    return found[-1]["StreamArn"]


def results_export_permissions() -> dict[str, tuple[str, ...]]:
    """The exportResults role: its own S3 writes + the stream reads its event source mapping makes."""
    from functions.archive.results_export import EXPORT_CALLS
    from functions.iam import actions_by_resource, declared_permissions

    return actions_by_resource(declared_permissions(*EXPORT_CALLS, pump_results_stream, results_stream_arn))
