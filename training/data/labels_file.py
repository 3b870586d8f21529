"""Labels files for multi-label training sets (``--labels-file``), local or on S3.

One frame per row: the path (relative to the dataset root, or absolute) or the S3 key (relative
to the prefix, or a full ``s3://bucket/key``), then the label list. CSV: ``path,labels`` with the
labels joined by ``;`` (an empty cell is the empty set); JSONL: ``{"path": ..., "labels": [...]}``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from training.data.loading import Candidate, DatasetError, MissingObject, parse_s3_uri, s3_fetcher

CSV_LABEL_SEP = ";"


def read_labels_file(labels_file: str, s3_client) -> list[tuple[str, tuple[str, ...]]]:
    if labels_file.startswith("s3://"):
        bucket, key = parse_s3_uri(labels_file)
        key = key.rstrip("/")
        try:
            text = s3_fetcher(s3_client, bucket, key)().decode("utf-8")
        except (MissingObject, DatasetError) as exc:  # either way the file is unusable
            raise DatasetError(f"{labels_file}: cannot read the labels file ({exc}); check the key") from exc
    else:
        try:
            text = Path(labels_file).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise DatasetError(f"{labels_file}: cannot read the labels file ({exc})") from exc
    if labels_file.lower().endswith((".jsonl", ".ndjson")):
        rows = _parse_jsonl(text, labels_file)
    else:
        rows = _parse_csv(text, labels_file)
    if not rows:
        raise DatasetError(f"{labels_file}: no rows; write one frame per line: path, labels")
    return rows


def _labels_tuple(values, where: str) -> tuple[str, ...]:
    labels = [str(value).strip() for value in values]
    if any(not label for label in labels):
        raise DatasetError(f"{where}: an empty label name; remove it (an empty list means no label)")
    return tuple(sorted(set(labels)))


def _parse_jsonl(text: str, name: str) -> list[tuple[str, tuple[str, ...]]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{name} line {number}"
        try:
            record = json.loads(line)
            path, labels = record["path"], record["labels"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DatasetError(f'{where}: expected {{"path": ..., "labels": [...]}} ({exc})') from exc
        if not isinstance(labels, list):
            raise DatasetError(f"{where}: labels must be a list (an empty list means no label)")
        rows.append((str(path), _labels_tuple(labels, where)))
    return rows


def _parse_csv(text: str, name: str) -> list[tuple[str, tuple[str, ...]]]:
    rows = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
        if not row or not row[0].strip():
            continue
        if number == 1 and row[0].strip().lower() in ("path", "key", "uri"):
            continue  # a header
        cell = row[1] if len(row) > 1 else ""
        labels = [part for part in cell.split(CSV_LABEL_SEP)] if cell.strip() else []
        rows.append((row[0].strip(), _labels_tuple(labels, f"{name} line {number}")))
    return rows


def labels_file_candidate(source: str, path: str, labels: tuple[str, ...], s3_client) -> Candidate:
    label = "+".join(labels)
    if path.startswith("s3://") or source.startswith("s3://"):
        if path.startswith("s3://"):
            bucket, key = parse_s3_uri(path)
            key = key.rstrip("/")
        else:
            bucket, prefix = parse_s3_uri(source)
            key = prefix + path.lstrip("/")
        return Candidate(f"s3://{bucket}/{key}", label, s3_fetcher(s3_client, bucket, key))
    file = Path(path).expanduser()
    if not file.is_absolute():
        file = Path(source).expanduser() / file
    file = file.resolve()
    return Candidate(str(file), label, file.read_bytes)
