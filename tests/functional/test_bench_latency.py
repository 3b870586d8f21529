"""bench.perf.latency: the cells run the real handler through the proxy and count what they should."""

from __future__ import annotations

import json
import uuid

from bench.perf.latency import Cell, deployed_settings, run_cells, s3_sqs_events, summarize_cell
from functions.frames.events import parse_event
from infra.deploy.topology import StackNames
from infra.local.stack import create_local_stack
from tests.functional.test_handler import BLUE, GREEN, RED, jpeg


def test_events_parse_as_first_deliveries_or_redeliveries():
    uploads = [(f"frames/cam/{i} x.jpg", f"etag{i}", 100 + i) for i in range(3)]
    (first, second) = s3_sqs_events("bucket-1", uploads, batch_size=2)
    frames = parse_event(first).frames + parse_event(second).frames
    assert [(f.key, f.etag, f.size, f.receive_count) for f in frames] == [
        ("frames/cam/0 x.jpg", "etag0", 100, 1),
        ("frames/cam/1 x.jpg", "etag1", 101, 1),
        ("frames/cam/2 x.jpg", "etag2", 102, 1),
    ]
    assert frames[0].sequencer < frames[1].sequencer < frames[2].sequencer
    (again,) = s3_sqs_events("bucket-1", uploads[:1], batch_size=10, receive_count=2)
    assert parse_event(again).frames[0].receive_count == 2
    assert json.loads(again["Records"][0]["body"])["Records"][0]["s3"]["bucket"]["name"] == "bucket-1"


def test_cells_run_the_deployed_handler_through_the_proxy(moto_server, aws_env, tiny_model):
    stack = create_local_stack(
        moto_server.endpoint_url, StackNames.for_stage(f"latency-{uuid.uuid4().hex[:8]}")
    )
    settings = deployed_settings(stack, tiny_model.sha256)
    # The deployed function's settings: camera state, review and the bus on, tags off.
    assert (settings.results_table, settings.state_table, settings.review_table, settings.event_bus) == (
        stack.names.table,
        stack.names.state_table,
        stack.names.review_table,
        stack.names.event_bus,
    )
    assert settings.write_tags is False
    frames = [jpeg(colour) for colour in (RED, GREEN, BLUE, RED)]
    progress = []
    cells = [Cell(0.0, 1), Cell(0.0, 2), Cell(0.0, 2, receive_count=2)]
    results = run_cells(
        moto_server.endpoint_url,
        stack.names.bucket,
        settings,
        tiny_model,
        frames,
        cells=cells,
        on_progress=lambda phase, done, total: progress.append((phase, done, total)),
    )
    assert list(results) == ["0ms-batch1", "0ms-batch2", "0ms-batch2-lookup"]
    assert [r["invocation"]["n"] for r in results.values()] == [4, 2, 2]
    # Per frame at least GetObject + the result's PutItem, and per camera per batch the camera
    # state's GetItem and PutItem; the redelivery cell adds a BatchGetItem per batch and the decode
    # mark's UpdateItem and DeleteItem.
    assert all(
        r["aws_calls_per_frame"] >= 2 + 2 / c.batch_size for r, c in zip(results.values(), cells, strict=True)
    )
    assert results["0ms-batch2-lookup"]["aws_calls_per_frame"] >= 2 + 2 / 2 + 0.5 + 2
    state = stack.client("dynamodb").scan(TableName=stack.names.state_table)["Items"]
    assert len([item for item in state if item["item"]["S"] == "state"]) == 3  # one camera per cell
    assert progress[-1] == ("done", 3, 3)


def test_summarize_cell():
    summary = summarize_cell(Cell(0.02, 10), [1.0, 1.2], [0.9, 1.1], 20, 60)
    assert summary["wall_per_frame_ms"] == 110.0 and summary["compute_per_frame_ms"] == 100.0
    assert summary["wall_over_compute"] == 1.1 and summary["aws_calls_per_frame"] == 3.0
