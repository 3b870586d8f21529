"""`camsort results --model-version V`: one camera's results as another model version saw them.

How the table keys them (see :func:`functions.results.result_sort_key`): the live result of a
frame is ``(object_id, object_version)`` and is the one in the ``by_camera`` index; a backfill
with another model writes ``(object_id, "<object_version>#<model_version>")`` without
``camera_id``/``captured_at``, so it stays out of the index. A camera's results for version V
are therefore read through the live items (the camera/time index), then one BatchGetItem per
100 frames for V's items. A frame V has not seen yet is simply absent.

Kept apart from infra/demo.py (being split); the demo's query/printing pieces are reused.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

from infra.demo import ResultsQuery, ResultsTarget, results_table, to_json


def query_model_results(
    query: ResultsQuery, target: ResultsTarget, model_version: str
) -> list[dict[str, Any]]:
    from functions.results import ResultsTable
    from infra.demo import DEFAULT_REGION, local_client

    if target.endpoint_url:
        dynamodb = local_client("dynamodb", target.endpoint_url, target.region or DEFAULT_REGION)
    else:
        import boto3

        dynamodb = boto3.session.Session(region_name=target.region).client("dynamodb")
    table = ResultsTable(target.table, dynamodb)
    found: list[dict[str, Any]] = []
    page: list[dict[str, Any]] = []

    def flush() -> bool:
        for item in table.model_results(page, model_version):
            if query.status and item.get("status") != query.status:
                continue
            found.append(item)
            if query.limit is not None and len(found) >= query.limit:
                return True
        page.clear()
        return False

    for live in table.iter_camera(query.camera, query.since, query.until):
        page.append(live)
        if len(page) == 100 and flush():
            return found
    flush()
    return found


def show_model_results(
    query: ResultsQuery,
    target: ResultsTarget,
    model_version: str,
    *,
    as_json: bool = False,
    console: Console | None = None,
) -> list[dict[str, Any]]:
    console = console or Console()
    items = query_model_results(query, target, model_version)
    if as_json:
        console.file.write(json.dumps([to_json(item) for item in items], indent=2, sort_keys=True) + "\n")
        return items
    title = f"{target.table}: {query.camera}, model version {model_version}"
    console.print(results_table(items, f"{title} ({len(items)} shown)"))
    return items


def results_command(
    *, model_version: str | None, console: Console | None = None, **options: Any
) -> list[dict[str, Any]]:
    """`camsort results`: the live results (infra.demo), or those of ``model_version``."""
    from datetime import UTC, datetime

    from functions.errors import ConfigurationError
    from infra import demo

    if model_version is None:
        return demo.results_command(**options, console=console)
    last, since, until = options["last"], options["since"], options["until"]
    if last and since:
        raise ConfigurationError("--last and --since both set the start of the range; give one of them")
    start = (
        datetime.now(UTC) - demo.parse_duration(last)
        if last
        else (demo.parse_time(since, "--since") if since else None)
    )
    end = demo.parse_time(until, "--until") if until else None
    query = ResultsQuery(
        camera=options["camera"], since=start, until=end, status=options["status"], limit=options["limit"]
    )
    target = demo.resolve_target(options["endpoint_url"], options["table"], options["region"])
    return show_model_results(query, target, model_version, as_json=options["as_json"], console=console)
