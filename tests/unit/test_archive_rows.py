"""The archive's pure parts: which partition a feature pointer lands in, which stream records
become result rows, and how a stream batch is split into Parquet files by day."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pyarrow.parquet as pq

from functions.archive.compaction import NO_CAMERA, partition_of
from functions.archive.results_export import SCHEMA, parquet_by_day, result_rows

WRITTEN = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)


def test_a_pointer_lands_in_its_camera_and_capture_day():
    row = {"camera_id": "cam-07", "captured_at": "2026-12-01T23:59:59.999Z", "_at": WRITTEN}
    assert partition_of(row) == ("cam-07", "2026-12-01")
    # A training set laid out by label has no camera; an old pointer, no capture time.
    assert partition_of({"camera_id": None, "captured_at": None, "_at": WRITTEN}) == (NO_CAMERA, "2026-12-06")


def record(name: str, sequence: str, image: dict | None) -> dict:
    body = {"SequenceNumber": sequence}
    if image is not None:
        body["NewImage"] = image
    return {"eventName": name, "dynamodb": body}


def item(key: str, captured: str, **extra) -> dict:
    image = {
        "object_id": {"S": f"b/{key}"},
        "object_version": {"S": "v1"},
        "key": {"S": key},
        "captured_at": {"S": captured},
        "status": {"S": "ok"},
        "label": {"S": "bus"},
        "probabilities": {"M": {"bus": {"N": "0.75"}, "car": {"N": "0.25"}}},
        "latency_ms": {"N": "81.5"},
    }
    return image | extra


def test_only_live_results_become_rows_one_per_write():
    records = [
        record(
            "INSERT",
            "100",
            item("frames/cam-01/a.jpg", "2026-12-01T08:00:00.000Z", camera_id={"S": "cam-01"}),
        ),
        record(
            "MODIFY",
            "200",
            item("frames/cam-01/a.jpg", "2026-12-01T08:00:00.000Z", camera_id={"S": "cam-01"}),
        ),
        record("REMOVE", "300", None),  # a deletion exports nothing
        record(
            "INSERT", "400", item("frames/a.jpg", "2026-12-01T08:00:00.000Z")
        ),  # no camera: another model version's
    ]
    rows = result_rows(records)
    assert [r["sequence"] for r in rows] == ["100".zfill(40), "200".zfill(40)]
    assert rows[0]["confidence"] == 0.75 and rows[0]["latency_ms"] == 81.5
    assert rows[0]["captured_at"] == datetime(2026, 12, 1, 8, 0)  # naive UTC, as both engines read it


def test_a_batch_becomes_one_file_per_capture_day_named_by_its_sequences():
    records = [
        record("INSERT", str(s), item(f"frames/cam-01/{s}.jpg", day, camera_id={"S": "cam-01"}))
        for s, day in ((7, "2026-12-01T23:00:00Z"), (9, "2026-12-02T01:00:00Z"), (8, "2026-12-01T22:00:00Z"))
    ]
    files = parquet_by_day(result_rows(records))
    assert {day: name for day, (name, _) in files.items()} == {
        "2026-12-01": "7-8.parquet",
        "2026-12-02": "9-9.parquet",
    }
    table = pq.read_table(io.BytesIO(files["2026-12-01"][1]))
    assert table.schema == SCHEMA and table.column("key").to_pylist() == [
        "frames/cam-01/7.jpg",
        "frames/cam-01/8.jpg",
    ]
