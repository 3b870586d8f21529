"""Reading camera state and events back: `camsort cameras`, `camsort events`, the dashboard.

Same sources as `camsort results` (:func:`infra.ops.results_query.resolve_target`): the demo left running,
a local endpoint, or AWS. The state table of a stage is named like its results table
(``camsort-results-<stage>`` -> ``camsort-state-<stage>``, as in :mod:`infra.deploy.topology`) unless
``--state-table`` names it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

from functions.errors import ConfigurationError
from functions.frames.keys import format_timestamp
from functions.frames.regions import DEFAULT_REGION as WHOLE_FRAME  # not the AWS region
from functions.state.camera_state import EVENT_PREFIX, event_item
from functions.state.episodes import Episode
from functions.state.state_item import (
    PARTITION_KEY,
    SORT_KEY,
    STATE_ITEM,
    readable_state,
    state_from_item,
    state_sort_key,
)
from functions.stores.results import deserialize_item
from infra.local.stack import DEFAULT_REGION, local_client

RESULTS_PREFIX = "camsort-results"
STATE_PREFIX = "camsort-state"


def state_table_for(results_table: str) -> str:
    """The state table of the stage that owns ``results_table``."""
    if not results_table.startswith(RESULTS_PREFIX):
        raise ConfigurationError(
            f"cannot tell the state table of results table {results_table!r}; pass --state-table"
        )
    return STATE_PREFIX + results_table[len(RESULTS_PREFIX) :]


@dataclass(frozen=True)
class StateSource:
    endpoint_url: str | None  # None: AWS
    state_table: str
    results_table: str
    region: str | None = None

    def dynamodb(self) -> Any:
        if self.endpoint_url:
            return local_client("dynamodb", self.endpoint_url, self.region or DEFAULT_REGION)
        import boto3

        return boto3.session.Session(region_name=self.region).client("dynamodb")


def resolve_source(
    endpoint_url: str | None, table: str | None, state_table: str | None, region: str | None
) -> StateSource:
    from infra.ops.results_query import resolve_target

    target = resolve_target(endpoint_url, table, region)
    return StateSource(
        endpoint_url=target.endpoint_url,
        state_table=state_table or state_table_for(target.table),
        results_table=target.table,
        region=target.region,
    )


def camera_states(
    source: StateSource, dynamodb: Any = None, *, regions: bool = False
) -> list[dict[str, Any]]:
    """Every camera's state item, by camera id; with ``regions``, each region's too (``state#<region>``,
    after its camera's). A scan: one small item per camera (and region)."""
    dynamodb = dynamodb or source.dynamodb()
    params: dict[str, Any] = {
        "TableName": source.state_table,
        "FilterExpression": "begins_with(#i, :state)" if regions else "#i = :state",
        "ExpressionAttributeNames": {"#i": SORT_KEY},
        "ExpressionAttributeValues": {":state": {"S": STATE_ITEM}},
    }
    found = []
    while True:
        response = _call(dynamodb.scan, source, **params)
        found += [readable_state(deserialize_item(item)) for item in response.get("Items", [])]
        if not response.get("LastEvaluatedKey"):
            break
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return sorted(found, key=lambda item: (item[PARTITION_KEY], item.get("region") or ""))


def camera_events(
    source: StateSource,
    camera: str,
    since: datetime | None = None,
    until: datetime | None = None,
    dynamodb: Any = None,
) -> list[dict[str, Any]]:
    """Events of ``camera`` overlapping [since, until], in order (a camera with regions: region by
    region, each numbered on its own); an open event has no end."""
    dynamodb = dynamodb or source.dynamodb()
    names = {"#pk": PARTITION_KEY, "#sk": SORT_KEY}
    values: dict[str, Any] = {":c": {"S": camera}, ":e": {"S": EVENT_PREFIX}}
    filters = []
    if until:
        names["#start"] = "start"
        values[":until"] = {"S": format_timestamp(until)}
        filters.append("#start <= :until")
    if since:
        names["#end"] = "end"
        values[":since"] = {"S": format_timestamp(since)}
        filters.append("(attribute_not_exists(#end) OR #end >= :since)")
    params: dict[str, Any] = {
        "TableName": source.state_table,
        "KeyConditionExpression": "#pk = :c AND begins_with(#sk, :e)",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }
    if filters:
        params["FilterExpression"] = " AND ".join(filters)
    found = []
    while True:
        response = _call(dynamodb.query, source, **params)
        found += [deserialize_item(item) for item in response.get("Items", [])]
        if not response.get("LastEvaluatedKey"):
            break
        params["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    by_region: dict[str, list[dict[str, Any]]] = {WHOLE_FRAME: []}
    for event in found:
        by_region.setdefault(event.get("region") or WHOLE_FRAME, []).append(event)
    return [
        event
        for region, events in sorted(by_region.items(), key=lambda pair: pair[0] != WHOLE_FRAME)
        for event in _with_open_event(events, _open_episode(source, camera, dynamodb, region), since, until)
    ]


def _open_episode(
    source: StateSource, camera: str, dynamodb: Any, region: str = WHOLE_FRAME
) -> Episode | None:
    """The camera's (or region's) open episode as its state item holds it now (its event item holds
    it as of its opening: the function does not rewrite it for every batch)."""
    response = _call(
        dynamodb.get_item,
        source,
        TableName=source.state_table,
        Key={PARTITION_KEY: {"S": camera}, SORT_KEY: {"S": state_sort_key(region)}},
        ConsistentRead=True,
    )
    item = response.get("Item")
    return state_from_item(deserialize_item(item)).episode if item else None


def _with_open_event(
    events: list[dict[str, Any]], episode: Episode | None, since: datetime | None, until: datetime | None
) -> list[dict[str, Any]]:
    """``events`` with the open one as the state item has it (added when its item is not written yet)."""
    if episode is None:
        return events
    current = {name: value for name, value in event_item(episode).items() if value is not None}  # as stored
    kept = [event for event in events if int(event.get("number", 0)) != episode.number]
    overlaps = (until is None or episode.start <= format_timestamp(until)) and (
        since is None or episode.end is None or episode.end >= format_timestamp(since)
    )
    if overlaps:
        kept.append(current)
    return sorted(kept, key=lambda event: int(event.get("number", 0)))


def _call(operation: Any, source: StateSource, **params: Any) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    from functions.stores.dynamo import table_error

    try:
        return operation(**params)
    except (ClientError, BotoCoreError) as exc:
        check = "--state-table (is camera state on for this stage? CAMSORT_STATE_TABLE)"
        raise table_error(
            exc, source.state_table, operation.__name__.title(), check, ConfigurationError
        ) from exc


# --- printing -------------------------------------------------------------------------------


def cameras_table(states: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    table.add_column("camera", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("since", no_wrap=True)
    table.add_column("health", no_wrap=True)
    table.add_column("health since", no_wrap=True)
    table.add_column("last frame", no_wrap=True)
    table.add_column("label", no_wrap=True)
    table.add_column("conf.", justify="right", no_wrap=True)
    table.add_column("object", overflow="fold")
    for item in states:
        last = item.get("last_frame") or {}
        region = item.get("region")
        table.add_row(
            f"{item[PARTITION_KEY]} / {region}" if region else item[PARTITION_KEY],
            item.get("state", ""),
            item.get("since") or "",
            _health_cell(item.get("health")),
            item.get("health_since") or "",
            last.get("t", ""),
            last.get("l", ""),
            f"{float(last['c']):.3f}" if "c" in last else "",
            frame_object(last.get("k", "")),
        )
    return table


def _health_cell(health: str | None) -> str:
    if health is None:
        return ""
    return health if health == "ok" else f"[bold red]{health}[/]"


def events_table(events: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    regions = any((event.get("region") or WHOLE_FRAME) != WHOLE_FRAME for event in events)
    if regions:  # a camera with regions: which region each event is of
        table.add_column("region", no_wrap=True)
    for name in ("start", "end", "previous", "state"):
        table.add_column(name, no_wrap=True)
    table.add_column("frames", justify="right", no_wrap=True)
    table.add_column("mean conf.", justify="right", no_wrap=True)
    table.add_column("first .. last frame", overflow="fold")
    for event in events:
        mean = event.get("mean_confidence")
        table.add_row(
            *([event.get("region") or WHOLE_FRAME] if regions else []),
            event.get("start", ""),
            event.get("end") or "(now)",
            event.get("previous_state", ""),
            event.get("state", ""),
            str(event.get("frame_count", "")),
            f"{float(mean):.3f}" if mean is not None else "",
            f"{frame_object(event.get('first_key') or '')} .. {frame_object(event.get('last_key') or '')}",
        )
    return table


def frame_object(frame_key: str) -> str:
    """``bucket/frames/cam/x.jpg@version`` -> ``x.jpg`` (a table per camera: the name is enough)."""
    return frame_key.rsplit("@", 1)[0].rsplit("/", 1)[-1]


def cameras_command(
    *,
    endpoint_url: str | None,
    table: str | None,
    state_table: str | None,
    region: str | None,
    as_json: bool,
    console: Console | None = None,
) -> list[dict[str, Any]]:
    """`camsort cameras`: every camera's current state, since when, and its last frame."""
    from infra.ops.results_query import to_json

    console = console or Console()
    source = resolve_source(endpoint_url, table, state_table, region)
    states = camera_states(source, regions=True)
    if as_json:
        console.file.write(json.dumps([to_json(_public(s)) for s in states], indent=2, sort_keys=True) + "\n")
    else:
        console.print(cameras_table(states, f"{source.state_table}: {len(states)} camera(s)"))
    return states


def events_command(
    *,
    camera: str,
    since: datetime | None,
    until: datetime | None,
    endpoint_url: str | None,
    table: str | None,
    state_table: str | None,
    region: str | None,
    as_json: bool,
    console: Console | None = None,
) -> list[dict[str, Any]]:
    """`camsort events`: one camera's events overlapping [since, until] (either end open)."""
    from infra.ops.results_query import to_json

    console = console or Console()
    source = resolve_source(endpoint_url, table, state_table, region)
    events = camera_events(source, camera, since, until)
    if as_json:
        console.file.write(json.dumps([to_json(_public(e)) for e in events], indent=2, sort_keys=True) + "\n")
    else:
        window = " .. ".join(format_timestamp(t) if t else "open" for t in (since, until))
        console.print(
            events_table(events, f"{source.state_table}: {camera}, {window} ({len(events)} events)")
        )
    return events


def _public(item: dict[str, Any]) -> dict[str, Any]:
    """What a user reads: the internal window/outbox/bookkeeping left out."""
    hidden = {SORT_KEY, "window", "ignored", "unwritten", "unpublished", "episode", "state_version", "number"}
    return {k: v for k, v in item.items() if k not in hidden}
