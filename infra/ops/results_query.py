"""`camsort results`' library side: find the table, query one camera's results, print them.

The command (camsort/commands/results.py) parses the options; the demo calls
:func:`show_results` for its closing query too.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from functions.frames.outputs import label_text
from functions.frames.regions import DEFAULT_MODEL
from infra.deploy.topology import StackNames
from infra.local.running import recorded_demo, running_demo
from infra.local.stack import DEFAULT_REGION, local_client

_PAGE = 100  # live items per BatchGetItem of another model version's results


@dataclass(frozen=True)
class ResultsQuery:
    camera: str
    since: datetime | None = None
    until: datetime | None = None
    status: str | None = None  # "ok" | "rejected"
    limit: int | None = None
    # None: the live results. A version: that model's results for the same frames (a backfill
    # with another model), read through the live items (functions.stores.results.result_sort_key).
    model_version: str | None = None
    model_name: str = DEFAULT_MODEL  # whose model_version: a named model's results are its job's commit items


@dataclass(frozen=True)
class ResultsTarget:
    endpoint_url: str | None  # None: AWS itself (credentials and region from the environment)
    table: str
    region: str | None = None


def resolve_target(
    endpoint_url: str | None,
    table: str | None,
    region: str | None,
    cache_dir: Path | None = None,
    stage: str | None = None,
) -> ResultsTarget:
    """Where a command looks: explicit options win; given none, the running demo.

    ``--stage`` alone names the running demo's stage (that demo) or another stage (on AWS); an
    endpoint without a table reads the recorded demo's stage, else the default stage.
    """
    demo = recorded_demo(cache_dir)
    names_the_demo = stage is not None and demo is not None and demo.stage == stage
    if endpoint_url or table or (stage and not names_the_demo):
        if not table:
            default_stage = stage or (demo.stage if demo else None)
            table = StackNames.for_stage(default_stage).table if default_stage else StackNames().table
        return ResultsTarget(endpoint_url=endpoint_url, table=table, region=region)
    running = running_demo(cache_dir)
    return ResultsTarget(endpoint_url=running.endpoint_url, table=running.table, region=running.region)


def query_results(query: ResultsQuery, target: ResultsTarget) -> list[dict[str, Any]]:
    """Result items of one camera in [since, until], oldest capture first, filtered by status."""
    from functions.stores.results import ResultsTable

    if target.endpoint_url:
        dynamodb = local_client("dynamodb", target.endpoint_url, target.region or DEFAULT_REGION)
    else:
        import boto3

        dynamodb = boto3.session.Session(region_name=target.region).client("dynamodb")
    table = ResultsTable(target.table, dynamodb)
    found: list[dict[str, Any]] = []
    # Status is not part of the index key: filter while reading, stop at the limit.
    for item in _camera_items(table, query):
        if query.status and item.get("status") != query.status:
            continue
        found.append(item)
        if query.limit is not None and len(found) >= query.limit:
            break
    return found


def _camera_items(table: Any, query: ResultsQuery) -> Iterator[dict[str, Any]]:
    """The live items of the range, or ``query.model_version``'s for the same frames.

    Another version's items are not in the camera index: they are read beside the live ones,
    one BatchGetItem per page of 100 live items (a frame that version has not seen is absent).
    """
    live = table.iter_camera(query.camera, query.since, query.until)
    if not query.model_version:
        yield from live
        return
    page: list[dict[str, Any]] = []
    for item in live:
        page.append(item)
        if len(page) == _PAGE:
            yield from table.model_results(page, query.model_version, query.model_name)
            page = []
    if page:
        yield from table.model_results(page, query.model_version, query.model_name)


def results_table(items: list[dict[str, Any]], title: str) -> Table:
    """One camera's results, readable at 80 columns: when every capture falls on one day, the
    date moves to the title and the time column keeps the time of day; label and reason share
    one column; the object is its file name (one camera per table)."""
    captured = [str(item.get("captured_at", "")) for item in items]
    days = {moment[:10] for moment in captured}
    one_day = len(days) == 1 and all(len(moment) > 11 and moment[10] == "T" for moment in captured)
    if one_day:
        title = f"{title}; captured {next(iter(days))} (UTC)"
    table = Table(title=title)
    # The capture time is the row's identity: never wrapped; results wrap, file names fold.
    table.add_column("captured" if one_day else "captured_at", no_wrap=True)
    table.add_column("result", max_width=20)
    table.add_column("conf.", justify="right", no_wrap=True)
    table.add_column("ms", justify="right", no_wrap=True)
    table.add_column("file", overflow="fold")
    for item, moment in zip(items, captured, strict=True):
        confidence = item.get("confidence")
        latency = item.get("latency_ms")
        if item.get("status") == "rejected":
            result = f"[yellow]rejected: {item.get('reason') or 'unknown'}[/]"
        else:
            result = label_text(item) or str(item.get("status", ""))  # a label, or a set: {bus, car}
        table.add_row(
            moment[11:] if one_day else moment,
            result,
            f"{float(confidence):.3f}" if confidence is not None else "",
            f"{float(latency):.0f}" if latency is not None else "",
            str(item.get("key", "")).rsplit("/", 1)[-1],
        )
    return table


def to_json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [to_json(v) for v in value]
    return value


def show_results(
    query: ResultsQuery, target: ResultsTarget, *, as_json: bool = False, console: Console | None = None
) -> list[dict[str, Any]]:
    """Query and print (a rich table, or JSON lines of the items); returns the items."""
    console = console or Console()
    items = query_results(query, target)
    if as_json:
        # Plain JSON (no colour, no wrapping), so it pipes into jq and friends.
        console.file.write(json.dumps([to_json(item) for item in items], indent=2, sort_keys=True) + "\n")
        return items
    window = " .. ".join(iso_utc(t) if t else "open" for t in (query.since, query.until))
    title = f"{target.table}: {query.camera}, {window}" + (f", status {query.status}" if query.status else "")
    if query.model_version:
        title += f", model {query.model_name} version {query.model_version}"
    console.print(results_table(items, f"{title} ({len(items)} shown)"))
    return items


def iso_utc(moment: datetime) -> str:
    """A moment as ``2026-01-01T12:00:00Z``: how the CLI prints and takes times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
