"""S3 Batch Operations files: the CSV manifest and the completion report, both formats as AWS documents them.

Manifest (CSV, no header): ``bucket,key[,versionId]`` per line; keys URL-encoded (AWS requires it
and passes the key to the function as written, which is why the handler ``unquote_plus``es).

Completion report, under ``<report prefix>/job-<job id>/`` (AWS's "Examples: S3 Batch Operations
completion reports"):

* ``manifest.json``: ``{"Format": "Report_CSV_20180820", "ReportCreationDate", "Results":
  [{"TaskExecutionStatus": "succeeded" | "failed", "Bucket", "MD5Checksum", "Key"}],
  "ReportSchema": "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"}``;
* ``results/<sha1>.csv``: one row per task. The documented LambdaInvoke examples put the HTTP
  status before the error code (``bucket,key,,failed,200,PermanentFailure,"message"``;
  succeeded: ``bucket,key,,succeeded,200,,"resultString"``) although ``ReportSchema`` names them
  the other way round; rows are written and read in the order of the examples.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote_plus

from functions.iam import requires

REPORT_FORMAT = "Report_CSV_20180820"
REPORT_SCHEMA = "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"
SUCCEEDED, FAILED = "succeeded", "failed"


@dataclass(frozen=True)
class ManifestEntry:
    bucket: str
    key: str  # decoded
    version_id: str | None = None


@dataclass(frozen=True)
class TaskResult:
    bucket: str
    key: str  # decoded
    version_id: str | None
    status: str  # succeeded | failed
    error_code: str  # "" when succeeded; PermanentFailure / TemporaryFailure / ...
    http_status: int
    message: str

    @property
    def reason(self) -> str:
        """What a failure was, for counting: the result string's lead ("rejected (empty)", "transient")."""
        lead = self.message.split(":", 1)[0].strip()
        return f"{self.error_code}: {lead}" if self.error_code else lead


def manifest_csv(entries: list[ManifestEntry]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for entry in entries:
        row = [entry.bucket, quote(entry.key, safe="/")]
        if entry.version_id:
            row.append(entry.version_id)
        writer.writerow(row)
    return buffer.getvalue()


def parse_manifest_csv(text: str, source: str) -> list[ManifestEntry]:
    entries = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row:
            continue
        if len(row) not in (2, 3) or not row[0] or not row[1]:
            raise ValueError(f"{source}, line {number}: expected bucket,key[,versionId], got {row!r}")
        entries.append(
            ManifestEntry(row[0], unquote_plus(row[1]), (row[2] or None) if len(row) == 3 else None)
        )
    return entries


def report_files(
    job_id: str,
    bucket: str,
    prefix: str,
    results: list[TaskResult],
    *,
    failed_only: bool,
    now: datetime | None = None,
) -> dict[str, bytes]:
    """``{key: body}`` of a completion report: the result CSVs and the top-level manifest.json."""
    root = f"{prefix.rstrip('/')}/job-{job_id}" if prefix.strip("/") else f"job-{job_id}"
    files: dict[str, bytes] = {}
    entries = []
    for status in (SUCCEEDED, FAILED):
        rows = [r for r in results if r.status == status]
        if not rows or (failed_only and status == SUCCEEDED):
            continue
        body = _results_csv(rows).encode()
        key = f"{root}/results/{hashlib.sha1(body).hexdigest()}.csv"  # a content-derived name, as AWS names them
        files[key] = body
        entries.append(
            {
                "TaskExecutionStatus": status,
                "Bucket": bucket,
                "MD5Checksum": hashlib.md5(body).hexdigest(),
                "Key": key,
            }
        )
    manifest = {
        "Format": REPORT_FORMAT,
        "ReportCreationDate": (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "Results": entries,
        "ReportSchema": REPORT_SCHEMA,
    }
    files[f"{root}/manifest.json"] = json.dumps(manifest, indent=2).encode()
    return files


def _results_csv(rows: list[TaskResult]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for r in rows:
        writer.writerow(
            [
                r.bucket,
                quote(r.key, safe="/"),
                r.version_id or "",
                r.status,
                r.http_status,
                r.error_code,
                r.message,
            ]
        )
    return buffer.getvalue()


@requires("s3:GetObject", resource="batch-reports")
def read_report(s3: Any, bucket: str, manifest_key: str) -> list[TaskResult]:
    """Every task row of a completion report, given its top-level manifest.json; MD5s checked."""
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=manifest_key)["Body"].read())
    if manifest.get("Format") != REPORT_FORMAT:
        raise ValueError(
            f"s3://{bucket}/{manifest_key}: format {manifest.get('Format')!r}, expected {REPORT_FORMAT}"
        )
    results = []
    for entry in manifest["Results"]:
        body = s3.get_object(Bucket=entry["Bucket"], Key=entry["Key"])["Body"].read()
        if hashlib.md5(body).hexdigest() != entry["MD5Checksum"]:
            raise ValueError(
                f"s3://{entry['Bucket']}/{entry['Key']}: MD5 does not match the report's manifest.json"
            )
        for row in csv.reader(io.StringIO(body.decode())):
            if row:
                bucket_, key, version, status, http, code, message = row
                results.append(
                    TaskResult(bucket_, unquote_plus(key), version or None, status, code, int(http), message)
                )
    return results


def summarise(results: list[TaskResult]) -> dict[str, Any]:
    """``{"succeeded": n, "failed": n, "failed_by_reason": {reason: n}}``."""
    failed = [r for r in results if r.status == FAILED]
    return {
        "succeeded": sum(r.status == SUCCEEDED for r in results),
        "failed": len(failed),
        "failed_by_reason": dict(Counter(r.reason for r in failed).most_common()),
    }
