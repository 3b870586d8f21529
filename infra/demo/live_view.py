"""The demo's live view: counters and one row per camera, refreshed until the queue drains."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from infra.demo.accounting import (
    scan_results,
)
from infra.deploy.topology import MAX_RECEIVE_COUNT
from infra.local.stack import LocalStack


@dataclass
class LiveState:
    uploaded: int = 0
    results: int = 0
    rejected: int = 0
    dead_letter: int = 0
    queue_visible: int = 0
    queue_in_flight: int = 0
    uploads_per_camera: Counter[str] = field(default_factory=Counter)
    results_per_camera: Counter[str] = field(default_factory=Counter)
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)  # camera -> newest result item
    camera_states: dict[str, dict[str, Any]] = field(default_factory=dict)  # camera -> state item
    simulator_done: bool = False


def poll_live_state(stack: LocalStack, state: LiveState) -> None:
    items = scan_results(stack)
    state.results = len(items)
    state.rejected = sum(1 for item in items if item.get("status") == "rejected")
    state.results_per_camera = Counter(item.get("camera_id") for item in items if item.get("camera_id"))
    latest: dict[str, dict[str, Any]] = {}
    for item in items:
        camera = item.get("camera_id")
        if camera and (
            camera not in latest or item.get("captured_at", "") > latest[camera].get("captured_at", "")
        ):
            latest[camera] = item
    state.latest = latest
    state.camera_states = {item["camera_id"]: item for item in _state_items(stack)}
    sqs = stack.client("sqs")
    queue = sqs.get_queue_attributes(
        QueueUrl=stack.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    state.queue_visible = int(queue["ApproximateNumberOfMessages"])
    state.queue_in_flight = int(queue["ApproximateNumberOfMessagesNotVisible"])
    dlq = sqs.get_queue_attributes(
        QueueUrl=stack.dead_letter_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    state.dead_letter = int(dlq["ApproximateNumberOfMessages"])


def _state_items(stack: LocalStack) -> list[dict[str, Any]]:
    from infra.ops.camera_views import StateSource, camera_states

    return camera_states(
        StateSource(stack.endpoint_url, stack.names.state_table, stack.names.table, stack.region)
    )


def render_live(state: LiveState, cameras: list[str]) -> Group:
    counters = Table.grid(padding=(0, 3))
    for _ in range(5):
        counters.add_column(justify="right")
    waiting = max(0, state.uploaded - state.results - state.dead_letter)
    counters.add_row(
        f"uploaded [bold]{state.uploaded}[/]",
        f"results [bold green]{state.results}[/]",
        f"rejected [bold yellow]{state.rejected}[/]",
        f"DLQ [bold red]{state.dead_letter}[/]",
        f"waiting [bold]{waiting}[/]",
    )
    # Fits 80 columns: the latest capture as a time of day (the demo runs now), long labels wrap.
    table = Table(title="cameras", expand=False)
    table.add_column("camera", no_wrap=True)
    table.add_column("uploads", justify="right", no_wrap=True)
    table.add_column("results", justify="right", no_wrap=True)
    table.add_column("latest (UTC)", no_wrap=True)
    table.add_column("label", max_width=20)
    table.add_column("conf.", justify="right", no_wrap=True)
    for camera in cameras:
        item = state.latest.get(camera, {})
        if item.get("status") == "rejected":
            label, confidence = f"[yellow]rejected: {item.get('reason')}[/]", ""
        else:
            label = item.get("label", "")
            confidence = f"{float(item['confidence']):.3f}" if item.get("confidence") is not None else ""
        # The camera's smoothed state under its id (a second line: the table must fit 80 columns).
        camera_state = state.camera_states.get(camera, {}).get("state")
        table.add_row(
            f"{camera}\n[bold]{camera_state}[/]" if camera_state else camera,
            str(state.uploads_per_camera.get(camera, 0)),
            str(state.results_per_camera.get(camera, 0)),
            str(item.get("captured_at", ""))[11:],  # HH:MM:SS.mmmZ
            label,
            confidence,
        )
    status = "simulator finished; draining the queue" if state.simulator_done else "cameras uploading"
    queue = f"queue {state.queue_visible} visible / {state.queue_in_flight} in flight"
    return Group(counters, table, f"[dim]{status}; {queue}[/]")


def watch(
    stack: LocalStack,
    state: LiveState,
    cameras: list[str],
    console: Console,
    *,
    simulation_done: Callable[[], bool],
    worker_failed: Callable[[], bool],
) -> None:
    """Live view until the simulator is done and the queue is empty (or a deadline passes).

    An empty queue (nothing visible, nothing in flight) means every message was either
    deleted after processing or moved to the DLQ. The deadline after the last upload allows a
    failing message its full redrive: maxReceiveCount visibility timeouts, plus a margin.
    """
    settle_s = stack.visibility_timeout_s * (MAX_RECEIVE_COUNT + 1) + 30
    simulation_ended: float | None = None
    with Live(
        render_live(state, cameras), console=console, refresh_per_second=4, redirect_stdout=False
    ) as live:
        while not worker_failed():  # its error is raised by worker.stop()
            poll_live_state(stack, state)
            state.simulator_done = simulation_done()
            live.update(render_live(state, cameras))
            if state.simulator_done:
                simulation_ended = simulation_ended or time.monotonic()
                if state.queue_visible == 0 and state.queue_in_flight == 0:
                    poll_live_state(stack, state)  # the last batch's results, written before its delete
                    live.update(render_live(state, cameras))
                    return
                if time.monotonic() - simulation_ended > settle_s:
                    console.print(f"[red]The queue did not drain within {settle_s}s of the last upload.[/]")
                    return
            time.sleep(0.5)
