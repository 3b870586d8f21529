"""`camsort review export` and `camsort review stats`: the review queue, for a person.

The function queues frames (functions/frames/review.py) in the review table; this module reads the
queue with the caller's own credentials (never the function's role), downloads the frames into
``DIR/_unlabeled/<camera>/`` with ``DIR/_unlabeled/guesses.csv`` holding the live model's
guess for each, and counts the queue per camera, label and reason. After a person moves the
files into ``DIR/<label>/`` folders, ``camsort train ORIGINAL DIR`` uses them
(training/data/dataset.py ignores ``_unlabeled``).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from functions.errors import ConfigurationError, StorageError
from functions.stores.results import deserialize_item
from functions.stores.review_queue import FRAME_ENTRY, PARTITION_KEY, SORT_KEY, ReviewQueue
from training.data.loading import UNLABELED_FOLDER

GUESSES_CSV = "guesses.csv"
CSV_COLUMNS = (
    "file", "camera_id", "captured_at", "label", "top_label", "confidence", "review_reason",
    "probabilities", "bucket", "key", "version_id", "model_version",
)  # fmt: skip


class ReviewQueueReader(ReviewQueue):
    """The review table as the CLI sees it: list and dequeue (the function only adds)."""

    def iter_entries(self, camera: str | None = None) -> Iterator[dict[str, Any]]:
        """Queued frames (quota counters left out), one camera's or all, oldest capture first per camera."""
        names = {"#sk": SORT_KEY}
        values: dict[str, Any] = {":frame": {"S": FRAME_ENTRY}}
        if camera:
            names["#pk"] = PARTITION_KEY
            values[":camera"] = {"S": camera}
            params: dict[str, Any] = {
                "KeyConditionExpression": "#pk = :camera AND begins_with(#sk, :frame)",
            }
            operation = "query"
        else:
            params = {"FilterExpression": "begins_with(#sk, :frame)"}
            operation = "scan"
        params |= {
            "TableName": self.table_name,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        while True:
            try:
                response = getattr(self._ddb, operation)(**params)
            except (ClientError, BotoCoreError) as exc:
                raise self._error(exc, self.table_name, operation.title()) from exc
            for raw in response.get("Items", []):
                yield deserialize_item(raw)
            if not response.get("LastEvaluatedKey"):
                return
            params["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def remove_entry(self, camera_id: str, entry: str) -> None:
        try:
            self._ddb.delete_item(
                TableName=self.table_name, Key={PARTITION_KEY: {"S": camera_id}, SORT_KEY: {"S": entry}}
            )
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, f"{self.table_name}/{camera_id}/{entry}", "DeleteItem") from exc


# --- stats -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueCount:
    camera_id: str
    label: str
    review_reason: str
    frames: int


def queue_counts(entries: Iterable[dict[str, Any]]) -> list[QueueCount]:
    """Frames queued per (camera, live label, reason), sorted. Pure."""
    counts = Counter(
        (e.get(PARTITION_KEY, ""), e.get("label", ""), e.get("review_reason", "")) for e in entries
    )
    return [QueueCount(*key, frames=n) for key, n in sorted(counts.items())]


def stats_table(counts: list[QueueCount], title: str) -> Table:
    table = Table(title=title)
    table.add_column("camera", no_wrap=True)
    table.add_column("label", no_wrap=True)
    table.add_column("reason", no_wrap=True)
    table.add_column("frames", justify="right")
    per_camera = Counter()
    for row in counts:
        table.add_row(row.camera_id, row.label, row.review_reason, str(row.frames))
        per_camera[row.camera_id] += row.frames
    table.add_section()
    for camera, frames in sorted(per_camera.items()):
        table.add_row(camera, "[bold]all[/]", "", f"[bold]{frames}[/]")
    return table


# --- export ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportResult:
    directory: Path  # DIR/_unlabeled
    exported: int
    missing: list[str]  # s3:// URIs gone since they were queued (expired or deleted)
    csv_path: Path


def export_frames(
    entries: Iterable[dict[str, Any]],
    s3_client: Any,
    out_dir: Path,
    *,
    queue: ReviewQueueReader | None = None,
    console: Console | None = None,
) -> ExportResult:
    """Download queued frames into ``out_dir/_unlabeled/<camera>/`` and write the guesses CSV.

    With ``queue``, each exported frame is taken off the queue (after its file is on disk).
    A frame whose object is gone is reported, not fatal. Re-running writes the same files.
    """
    entries = list(entries)
    root = Path(out_dir) / UNLABELED_FOLDER
    root.mkdir(parents=True, exist_ok=True)
    rows, missing = [], []
    console = console or Console()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"downloading {len(entries)} frame(s)", total=len(entries))
        for entry in entries:
            path = root / _safe(entry[PARTITION_KEY]) / file_name(entry)
            uri = f"s3://{entry['bucket']}/{entry['key']}"
            try:
                _download(s3_client, entry, path)
            except _Gone:
                missing.append(uri)
                progress.advance(task)
                continue
            rows.append(_csv_row(entry, path.relative_to(out_dir)))
            if queue is not None:
                queue.remove_entry(entry[PARTITION_KEY], entry[SORT_KEY])
            progress.advance(task)
    csv_path = root / GUESSES_CSV
    _merge_csv(csv_path, rows)
    return ExportResult(directory=root, exported=len(rows), missing=missing, csv_path=csv_path)


def file_name(entry: dict[str, Any]) -> str:
    """``<capture time>_<key's file name>``: unique per camera, sorts by time, keeps the extension."""
    name = PurePosixPath(entry["key"]).name
    stamp = "".join(ch for ch in str(entry.get("captured_at") or "") if ch.isalnum())
    return _safe(f"{stamp}_{name}" if stamp else name)


def _safe(part: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in part).lstrip(".")
    if not cleaned:
        raise ConfigurationError(f"{part!r}: cannot be used as a file name")
    return cleaned


class _Gone(Exception):
    pass


def _download(s3_client: Any, entry: dict[str, Any], path: Path) -> None:
    params = {"Bucket": entry["bucket"], "Key": entry["key"]}
    if entry.get("version_id"):
        params["VersionId"] = entry["version_id"]
    uri = f"s3://{entry['bucket']}/{entry['key']}"
    try:
        data = s3_client.get_object(**params)["Body"].read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "NoSuchVersion", "404"):
            raise _Gone(uri) from exc
        raise StorageError(f"{uri}: GetObject failed ({code}); check the credentials and the bucket") from exc
    except BotoCoreError as exc:
        raise StorageError(f"{uri}: download failed ({exc}); check the endpoint/network and retry") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.part")
    temporary.write_bytes(data)
    temporary.replace(path)


def _csv_row(entry: dict[str, Any], relative: Path) -> dict[str, str]:
    probabilities = {k: float(v) for k, v in (entry.get("probabilities") or {}).items()}
    confidence = entry.get("confidence")
    return {
        "file": str(relative),
        "camera_id": entry.get(PARTITION_KEY, ""),
        "captured_at": entry.get("captured_at") or "",
        "label": entry.get("label") or "",
        "top_label": entry.get("top_label") or "",
        "confidence": f"{float(confidence):.4f}" if confidence is not None else "",
        "review_reason": entry.get("review_reason") or "",
        "probabilities": json.dumps(probabilities, sort_keys=True),
        "bucket": entry.get("bucket") or "",
        "key": entry.get("key") or "",
        "version_id": entry.get("version_id") or "",
        "model_version": entry.get("model_version") or "",
    }


def _merge_csv(path: Path, rows: list[dict[str, str]]) -> None:
    """Rows of earlier exports into the same DIR stay; a re-exported file replaces its row."""
    merged: dict[str, dict[str, str]] = {}
    if path.exists():
        with path.open(newline="") as handle:
            merged = {row["file"]: row for row in csv.DictReader(handle)}
    merged.update({row["file"]: row for row in rows})
    temporary = path.with_name(f".{path.name}.part")
    with temporary.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(merged[name] for name in sorted(merged))
    temporary.replace(path)


# --- the commands ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AwsTarget:
    """Where the deployment lives: a local endpoint (moto) or AWS itself (endpoint None)."""

    endpoint_url: str | None
    results_table: str
    review_table: str
    region: str | None = None

    def client(self, service: str) -> Any:
        if self.endpoint_url:
            from infra.local.stack import DEFAULT_REGION, local_client

            return local_client(service, self.endpoint_url, self.region or DEFAULT_REGION)
        import boto3

        return boto3.session.Session(region_name=self.region).client(service)


RESULTS_PREFIX, REVIEW_PREFIX = "camsort-results-", "camsort-review-"


def resolve_aws_target(
    endpoint_url: str | None,
    results_table: str | None,
    review_table: str | None,
    region: str | None,
    stage: str | None = None,
) -> AwsTarget:
    """Explicit options win; otherwise the running demo's (as `camsort results`). The review table
    defaults to the results table's stage twin (camsort-results-X -> camsort-review-X)."""
    from infra.ops.results_query import resolve_target

    target = resolve_target(endpoint_url, results_table, region, stage=stage)
    if not review_table:
        if not target.table.startswith(RESULTS_PREFIX):
            raise ConfigurationError(
                f"results table {target.table!r} is not named camsort-results-<stage>; pass --review-table"
            )
        review_table = REVIEW_PREFIX + target.table[len(RESULTS_PREFIX) :]
    return AwsTarget(target.endpoint_url, target.table, review_table, target.region)


def review_export_command(
    out_dir: Path, target: AwsTarget, *, camera: str | None, dequeue: bool, console: Console | None = None
) -> ExportResult:
    """`camsort review export DIR`."""
    console = console or Console()
    reader = ReviewQueueReader(target.review_table, target.client("dynamodb"))
    entries = list(reader.iter_entries(camera))
    result = export_frames(
        entries, target.client("s3"), out_dir, queue=reader if dequeue else None, console=console
    )
    console.print(
        f"Exported {result.exported} frame(s) from {target.review_table} into {result.directory}/<camera>/; "
        f"the model's guesses are in {result.csv_path}."
    )
    for uri in result.missing:
        console.print(f"[yellow]{uri}: no longer in S3 (deleted or expired); skipped[/]")
    if result.exported:
        console.print(
            f"Move each file into {Path(out_dir)}/<label>/, then: camsort train ORIGINAL_DATA {out_dir} --out MODEL_DIR"
        )
    return result


def review_stats_command(
    target: AwsTarget, *, camera: str | None, as_json: bool, console: Console | None = None
) -> list[QueueCount]:
    """`camsort review stats`."""
    console = console or Console()
    reader = ReviewQueueReader(target.review_table, target.client("dynamodb"))
    counts = queue_counts(reader.iter_entries(camera))
    if as_json:
        console.file.write(json.dumps([row.__dict__ for row in counts], indent=2) + "\n")
    else:
        total = sum(row.frames for row in counts)
        console.print(stats_table(counts, f"{target.review_table}: {total} frame(s) queued for review"))
    return counts
