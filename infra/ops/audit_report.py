"""`camsort audit` on a stack (local moto or AWS): run the account, show it, redrive.

The account itself is :func:`functions.archive.audit.run_audit` (the one implementation, shared with
the scheduled audit function, the demo and the soak); this module only points it at a
stack, renders its table / JSON and sends the unaccounted back through the queue.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table

from functions.archive.accounting import ACCOUNTED, AuditReport
from functions.archive.audit import LISTING_FULL, DeadLetterReader, Redriver, VersionLister, run_audit
from functions.errors import ConfigurationError, StorageError
from functions.stores.results import ResultsTable
from infra.deploy.topology import StackNames
from infra.local.stack import DEFAULT_REGION, LocalStack, local_client

# A version younger than this may still be on its way (queue, batching window, retries).
DEFAULT_GRACE = timedelta(minutes=15)
# Without --since: this much history.
DEFAULT_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class AuditTarget:
    names: StackNames
    endpoint_url: str | None  # None: AWS (credentials and region from the environment)
    region: str | None

    def client(self, service: str) -> Any:
        if self.endpoint_url:
            return local_client(service, self.endpoint_url, self.region or DEFAULT_REGION)
        import boto3

        return boto3.client(service, region_name=self.region)

    @classmethod
    def of_stack(cls, stack: LocalStack) -> AuditTarget:
        return cls(names=stack.names, endpoint_url=stack.endpoint_url, region=stack.region)


def audit(
    target: AuditTarget,
    *,
    since: datetime,
    until: datetime,
    grace: timedelta = DEFAULT_GRACE,
    prefix: str | None = None,
    listing: str = LISTING_FULL,
    now: datetime | None = None,
) -> AuditReport:
    """The account of the target's bucket (prefix: the frames prefix) for [since, until]."""
    sqs = target.client("sqs")
    dead_letters = DeadLetterReader(sqs, _queue_url(sqs, target.names.dead_letter_queue))
    return run_audit(
        bucket=target.names.bucket,
        prefix=target.names.frames_prefix if prefix is None else prefix,
        lister=VersionLister(target.client("s3")),
        table=ResultsTable(target.names.table, target.client("dynamodb")),
        dead_letters=dead_letters,
        since=since,
        until=until,
        grace=grace,
        listing=listing,
        now=now,
    )


def audit_stack(stack: LocalStack, *, grace: timedelta = timedelta(0)) -> AuditReport:
    """Everything the local stack's bucket holds, now (the demo's and the soak's closing account)."""
    now = datetime.now(UTC)
    return audit(
        AuditTarget.of_stack(stack), since=datetime(2000, 1, 1, tzinfo=UTC), until=now, grace=grace, now=now
    )


def redrive(target: AuditTarget, report: AuditReport) -> int:
    """Synthetic S3 notifications for every unaccounted version, into the frames queue."""
    from functions.archive.accounting import ObjectVersion

    sqs = target.client("sqs")
    versions = [
        ObjectVersion(
            key=v.key,
            version_id=v.version_id,
            etag=v.etag,
            size=v.size,
            last_modified=datetime.fromisoformat(v.last_modified.replace("Z", "+00:00")),
        )
        for v in report.unaccounted
    ]
    redriver = Redriver(sqs, _queue_url(sqs, target.names.queue), target.region or DEFAULT_REGION)
    return redriver.redrive(report.bucket, versions)


def audit_table(report: AuditReport, title: str = "Audit") -> Table:
    counts = report.counts
    table = Table(title=f"{title}: s3://{report.bucket}/{report.prefix}  {report.since} .. {report.until}")
    table.add_column("object versions", style="bold")
    table.add_column("count", justify="right")
    reasons = report.rejected_reasons
    for category in ACCOUNTED:
        detail = ""
        if category == "rejected" and reasons:
            detail = "  (" + ", ".join(f"{r} {n}" for r, n in sorted(reasons.items())) + ")"
        table.add_row(f"accounted: {category.replace('_', '-')}", f"{counts[category]}{detail}")
    table.add_row("accounted: total", str(sum(counts[c] for c in ACCOUNTED)))
    table.add_row(f"pending (younger than {report.grace_s:g} s)", str(counts["pending"]))
    table.add_row("UNACCOUNTED", _flag(counts["unaccounted"]))
    table.add_row("duplicated (2+ results, or result + DLQ)", _flag(len(report.duplicated)))
    table.add_row("results whose object version is gone", _flag(len(report.orphans)))
    table.add_row("DLQ messages (read, not consumed)", str(report.dlq_messages))
    return table


def audit_command(
    *,
    stage: str | None,
    endpoint_url: str | None,
    region: str | None,
    since: datetime | None,
    until: datetime | None,
    last: timedelta | None,
    prefix: str | None,
    grace: timedelta,
    listing: str,
    as_json: bool,
    do_redrive: bool,
    console: Console | None = None,
) -> int:
    """Run, print, optionally redrive; returns the exit code (1 when anything is unaccounted)."""
    from infra.ops.results_query import resolve_target

    console = console or Console()
    # The same rule as every operator command: no endpoint and no stage (or the demo's stage):
    # the running demo; another stage without an endpoint: AWS.
    located = resolve_target(endpoint_url, None, region, stage=stage)
    names = StackNames.for_stage(StackNames.stage_of(located.table) or "local")
    target = AuditTarget(names=names, endpoint_url=located.endpoint_url, region=located.region)
    now = datetime.now(UTC)
    end = until or now
    if since and last:
        raise ConfigurationError("--since and --last both give the start: pass one")
    start = since or end - (last or DEFAULT_WINDOW)
    report = audit(target, since=start, until=end, grace=grace, prefix=prefix, listing=listing, now=now)
    redriven = redrive(target, report) if do_redrive and report.unaccounted else 0
    if as_json:
        console.print_json(json.dumps(report.to_json() | {"redriven": redriven}))
    else:
        console.print(audit_table(report))
        for version in report.unaccounted[:20]:
            console.print(
                f"[red]unaccounted[/red] {version.key} version {version.version_id} ({version.last_modified})"
            )
        for orphan in report.orphans[:20]:
            console.print(
                f"[red]result without its object version[/red] {orphan['key']} @ {orphan['object_version']}"
            )
        if redriven:
            console.print(
                f"redrove {redriven} unaccounted version(s) into {target.names.queue}; audit again later"
            )
    return 1 if report.unaccounted else 0


def _queue_url(sqs: Any, name: str) -> str:
    from botocore.exceptions import BotoCoreError, ClientError

    from functions.stores.storage import error_code

    try:
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if error_code(exc) in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise ConfigurationError(
                f"queue {name} does not exist at {sqs.meta.endpoint_url}: that stage was never created "
                "there; check --stage (and --endpoint-url / --region)"
            ) from exc
        raise StorageError(f"queue {name}: GetQueueUrl failed ({exc}); check the permissions") from exc
    except BotoCoreError as exc:
        raise StorageError(f"queue {name}: GetQueueUrl failed ({exc})") from exc


def _flag(count: int) -> str:
    return f"[red]{count}[/red]" if count else "0"
