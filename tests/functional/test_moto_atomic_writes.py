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


def test_a_transaction_completes_and_its_condition_still_guards_it(dynamodb_client, results_table):
    """TransactWriteItems goes through the same lock as the single writes it is made of (it hung)."""

    def key(name: str) -> dict:
        return {"object_id": {"S": name}, "object_version": {"S": "0"}}

    def transact() -> None:
        dynamodb_client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": results_table,
                        "Item": key("a") | {"n": {"N": "1"}},
                        "ConditionExpression": "attribute_not_exists(object_id)",
                    }
                },
                {
                    "Update": {
                        "TableName": results_table,
                        "Key": key("b"),
                        "UpdateExpression": "ADD #n :one",
                        "ExpressionAttributeNames": {"#n": "n"},
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
            ]
        )

    with ThreadPoolExecutor(max_workers=4) as pool:  # concurrent transactions, one condition
        outcomes = list(pool.map(lambda _: _attempt(transact), range(4)))

    assert outcomes.count("ok") == 1 and outcomes.count("TransactionCanceledException") == 3
    for name in ("a", "b"):  # the winner wrote both items; the losers wrote neither
        item = dynamodb_client.get_item(TableName=results_table, Key=key(name), ConsistentRead=True)["Item"]
        assert item["n"] == {"N": "1"}


def _attempt(write) -> str:
    from botocore.exceptions import ClientError

    try:
        write()
    except ClientError as exc:
        return exc.response["Error"]["Code"]
    return "ok"
