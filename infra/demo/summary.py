"""The demo's outcome: its summary table (for people) and its JSON report (for scripts and tests)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from rich.table import Table

from infra.demo.accounting import (
    Account,
    percentile,
)
from infra.demo.simulator import SimulationManifest
from infra.local.worker import WorkerStats
from infra.ops.results_query import iso_utc


@dataclass
class DemoOutcome:
    account: Account
    worker: WorkerStats
    function_duplicates: int  # the function's own Duplicates metric (EMF) over the run
    redeliveries: int  # messages delivered again after a failed delivery
    function_timeout_s: int
    endpoint_url: str
    table: str
    started_at: datetime
    finished_at: datetime

    @property
    def exit_code(self) -> int:
        return 1 if self.account.lost else 0


REPORT_FILENAME = "report.json"


def outcome_report(outcome: DemoOutcome, simulated: SimulationManifest) -> dict[str, Any]:
    """The summary table's figures as plain JSON values (what ``report.json`` holds)."""
    result = outcome.account
    return {
        "uploaded": result.uploaded,
        "frames": len(simulated.frames),
        "bad_objects": sum(1 for obj in simulated.objects if obj.expected_reason),
        "results": result.results,
        "ok": result.ok,
        "labels": dict(sorted(result.labels.items())),
        "rejected": sum(result.rejected.values()),
        "rejected_by_reason": dict(sorted(result.rejected.items())),
        "label_agreement": {"agree": result.label_agreement[0], "of": result.label_agreement[1]},
        "unexpected": list(result.unexpected),
        "dead_lettered": list(result.dead_lettered),
        "dlq_messages": result.dlq_messages,
        "lost": list(result.lost),
        "extra_results": list(result.extra_results),
        "duplicates_suppressed": outcome.function_duplicates,
        "duplicate_notifications": result.duplicate_notifications,
        "redeliveries": outcome.redeliveries,
        "function_latency_ms": {
            "p50": percentile(result.function_latency_ms, 50),
            "p95": percentile(result.function_latency_ms, 95),
        },
        "end_to_end_ms": {
            "p50": percentile(result.end_to_end_ms, 50),
            "p95": percentile(result.end_to_end_ms, 95),
        },
        "worker": asdict(outcome.worker),
        "function_timeout_s": outcome.function_timeout_s,
        "endpoint_url": outcome.endpoint_url,
        "table": outcome.table,
        "started_at": iso_utc(outcome.started_at),
        "finished_at": iso_utc(outcome.finished_at),
        "exit_code": outcome.exit_code,
    }


def summary_table(outcome: DemoOutcome, simulated: SimulationManifest) -> Table:
    result, worker = outcome.account, outcome.worker
    table = Table(title="camsort demo: summary", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_column("notes")
    bad_expected = sum(1 for obj in simulated.objects if obj.expected_reason)
    table.add_row(
        "uploaded objects", str(result.uploaded), f"{len(simulated.frames)} frames + {bad_expected} bad"
    )
    table.add_row("results", str(result.results), "one item per object")
    table.add_row("  ok", str(result.ok), _agreement(result.label_agreement))
    for label, count in sorted(result.labels.items()):
        table.add_row(f"    {label}", str(count), "")
    table.add_row("  rejected", str(sum(result.rejected.values())), "")
    for reason, count in sorted(result.rejected.items()):
        table.add_row(f"    {reason}", str(count), "")
    table.add_row(
        "unexpected outcomes",
        _count(len(result.unexpected), bad="yellow"),
        "; ".join(result.unexpected[:3]) or "every object got the status the simulator expected",
    )
    table.add_row(
        "DLQ", _count(len(result.dead_lettered), bad="yellow"), f"{result.dlq_messages} message(s) in the DLQ"
    )
    table.add_row("lost", _count(len(result.lost), bad="bold red"), "uploaded, no result and not in the DLQ")
    table.add_row(
        "duplicates suppressed",
        str(outcome.function_duplicates),
        f"frames the function found already recorded (its Duplicates metric): "
        f"{result.duplicate_notifications} duplicate notification(s), {outcome.redeliveries} redelivery(ies)",
    )
    if result.extra_results:
        table.add_row("objects with >1 result", _count(len(result.extra_results), bad="red"), "")
    table.add_row(
        "function latency p50 / p95", _ms_pair(result.function_latency_ms), "download -> result ready"
    )
    table.add_row(
        "end-to-end latency p50 / p95", _ms_pair(result.end_to_end_ms), "upload done -> result written"
    )
    table.add_row(
        "worker",
        str(worker.invocations),
        f"invocations; {worker.received} messages received, {worker.deleted} deleted, "
        f"{worker.reported_failures} reported failed, {worker.failed_batches} failed batches "
        f"({worker.timeouts} over the {outcome.function_timeout_s}s function timeout)",
    )
    return table


def _agreement(agreement: tuple[int, int]) -> str:
    agree, total = agreement
    if not total:
        return ""
    return f"{agree}/{total} match the label the simulator rendered"


def _count(value: int, *, bad: str) -> str:
    return f"[{bad}]{value}[/]" if value else "0"


def _ms_pair(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{percentile(values, 50):.0f} / {percentile(values, 95):.0f} ms"
