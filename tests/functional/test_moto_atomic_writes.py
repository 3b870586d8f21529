"""The moto server applies a conditional write atomically, as DynamoDB does.

moto answers on several threads; without infra.local.moto_server.make_dynamodb_writes_atomic, concurrent
conditional counters (the review quota) let more writes through than their condition allows.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

LIMIT = 3
WRITERS = 24


def test_concurrent_conditional_counter_stops_at_its_limit(dynamodb_client, results_table):
    def take(_: int) -> bool:
        try:
            dynamodb_client.update_item(
                TableName=results_table,
                Key={"object_id": {"S": "counter"}, "object_version": {"S": "0"}},
                UpdateExpression="ADD #n :one",
                ConditionExpression="attribute_not_exists(#n) OR #n < :limit",
                ExpressionAttributeNames={"#n": "taken"},
                ExpressionAttributeValues={":one": {"N": "1"}, ":limit": {"N": str(LIMIT)}},
            )
            return True
        except dynamodb_client.exceptions.ConditionalCheckFailedException:
            return False

    with ThreadPoolExecutor(max_workers=WRITERS) as pool:
        taken = list(pool.map(take, range(WRITERS)))

    item = dynamodb_client.get_item(
        TableName=results_table, Key={"object_id": {"S": "counter"}, "object_version": {"S": "0"}}
    )["Item"]
    assert sum(taken) == LIMIT
    assert item["taken"] == {"N": str(LIMIT)}
