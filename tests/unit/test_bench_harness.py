"""The bench's pure bookkeeping: child measurements -> figures, event parsing, profiles, config."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from bench.child import ChildRun, parse_importtime
from bench.config import BenchConfig, BenchError
from bench.inputs import backbone_paths, backbones_record, model_dir_for, training_cache_dir
from bench.stages import reference_item, s3_objects_of, summarize_onnxruntime_profile
from bench.summary import batch_split, summarize_draft, summarize_path

EVENTS = Path(__file__).resolve().parents[1] / "events"


def _full_run() -> ChildRun:
    return ChildRun(
        marks_s={"started": 0.05, "imported": 0.6, "first_result": 0.9},
        result={
            "batch_1_s": [0.010, 0.020, 0.030, 0.040],
            "batch_1_wall_s": 0.2,
            "batch_10_s": [0.100, 0.060],
            "batch_10_sizes": [10, 10],
            "batch_10_wall_s": 0.16,
            "batch_10_compute_s": [0.070, 0.040],
            "batch_1_compute_s": [0.006, 0.006, 0.007, 0.009],
            "stages_s": {"get_object": [0.002, 0.004], "decode": [0.003, 0.005], "inference": [0.010, 0.012]},
        },
        peak_rss_mib=512.5,
    )


def _cold(first_result: float) -> ChildRun:
    return ChildRun(marks_s={"started": 0.04, "imported": first_result - 0.3, "first_result": first_result})


def test_summarize_path_turns_raw_seconds_into_the_reported_figures():
    summary = summarize_path([_cold(1.2), _cold(0.8), _cold(1.0)], _full_run(), None, {"bus": 2, "car": 2})
    assert summary["warm_batch_1"]["p50_ms"] == 25.0
    assert summary["warm_batch_10_per_frame"]["p50_ms"] == 8.0  # (10 ms + 6 ms) / 2
    assert summary["throughput_fps"] == {"batch_1": 20.0, "batch_10": 125.0}
    assert summary["cold_start_s"]["runs"] == [1.2, 0.8, 1.0]
    assert summary["cold_start_s"]["median"] == 1.0
    assert summary["cold_start_s"]["phases_median_s"]["imported"] == 0.7
    assert summary["cold_start_s"]["full_run_first_result_s"] == 0.9
    assert summary["peak_rss_mib"] == 512.5
    assert summary["stages"]["decode"]["p50_ms"] == 4.0
    # per-frame sums: all stages 15 ms and 21 ms; S3 + DynamoDB 2 and 4; compute 13 and 17
    assert summary["stages"]["all stages"]["p50_ms"] == 18.0
    assert summary["stages"]["S3 + DynamoDB calls"]["p50_ms"] == 3.0
    assert summary["stages"]["compute (decode + inference + decide)"]["p50_ms"] == 15.0
    assert summary["labels"] == {"bus": 2, "car": 2}
    # Batch 10, per frame: 160 ms over 20 frames, of which compute alone 110 ms.
    assert summary["batch_10_split_ms"] == {"wall": 8.0, "compute": 5.5, "aws_and_rest": 2.5}
    # Batch 1: 100 ms over 4 frames, of which compute alone 28 ms.
    assert summary["batch_1_split_ms"] == {"wall": 25.0, "compute": 7.0, "aws_and_rest": 18.0}


def test_the_split_table_puts_the_aws_round_trips_in_their_own_column():
    from bench.report_tables import SPLIT_HEADER, render_markdown, split_table_rows

    summary = summarize_path([_cold(1.0)], _full_run(), None, {"bus": 4})
    results = {"paths": {"int8": summary}}
    assert SPLIT_HEADER[-1] == "AWS round trips (moto) + handler work"
    assert split_table_rows(results) == [
        ["(c) handler int8", "batch 1", "25.0", "7.0", "18.0"],
        ["(c) handler int8", "batch 10", "8.0", "5.5", "2.5"],
    ]
    markdown = render_markdown(results)
    assert "| (c) handler int8 | batch 10 | 8.0 | 5.5 | 2.5 |" in markdown
    assert "| compute per frame, batch 10 (decode + inference) (ms) | — | — | 5.5 |" in markdown
    # Not measured is "—"; a figure that has no meaning for the notebook way is "n/a".
    assert (
        "| training featurization, training.features.featurize end to end (frames/s) | n/a | — | — | n/a | n/a |"
        in markdown
    )


def test_batch_split_adds_up_and_needs_the_compute():
    split = batch_split([0.9, 0.5], [0.4, 0.3], 20)
    assert split == {"wall": 70.0, "compute": 35.0, "aws_and_rest": 35.0}
    assert split["compute"] + split["aws_and_rest"] == split["wall"]
    assert batch_split([0.9], None, 10) is None and batch_split([0.9], [0.1], 0) is None


def test_summarize_draft_pools_decode_times_and_scores_agreement_per_model():
    raw = {
        "decode_draft_s": [0.003, 0.004],
        "decode_full_s": [0.010, 0.012],
        "labels_draft": ["bus", "car"],
        "labels_full": ["bus", "unknown"],
        "top_labels_draft": ["bus", "car"],
        "top_labels_full": ["bus", "car"],
        "max_abs_probability_diff": 0.02,
    }
    paths = {
        "fp32": {"draft_raw": raw},
        "int8": {"draft_raw": dict(raw, labels_full=["bus", "car"])},
        "reference": {},
    }
    draft = summarize_draft(paths)
    assert draft["decode"]["draft"]["n"] == 4
    assert draft["decode"]["full"]["p50_ms"] == 11.0
    assert draft["agreement"]["fp32"] == {
        "n": 2,
        "labels": 0.5,
        "top_labels": 1.0,
        "max_abs_probability_diff": 0.02,
    }
    assert draft["agreement"]["int8"]["labels"] == 1.0
    assert "draft_raw" not in paths["fp32"]  # moved into the draft section, not duplicated


def test_summarize_draft_without_handler_paths_is_none():
    assert summarize_draft({"reference": {}}) is None


def _sqs_event(keys: list[str], event_name: str = "ObjectCreated:Put") -> dict:
    """An SQS event of one S3 notification per key (the recorded shapes under tests/events)."""
    recorded = json.loads((EVENTS / "s3_put.json").read_text())["Records"][0]
    records = []
    for key in keys:
        s3_record = json.loads(json.dumps(recorded))
        s3_record["eventName"] = event_name
        s3_record["s3"]["bucket"]["name"] = "frames"
        s3_record["s3"]["object"]["key"] = key
        body = {"Records": [s3_record]}
        records.append(
            {
                "messageId": key,
                "receiptHandle": "handle",
                "body": json.dumps(body),
                "attributes": {},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
            }
        )
    return {"Records": records}


def test_s3_objects_of_decodes_keys_and_skips_non_creations():
    assert s3_objects_of(_sqs_event(["frames/cam+1/a%2Bb.jpg", "frames/cam/c.jpg"])) == [
        ("frames", "frames/cam 1/a+b.jpg"),
        ("frames", "frames/cam/c.jpg"),
    ]
    assert s3_objects_of(_sqs_event(["frames/cam/c.jpg"], "ObjectRemoved:Delete")) == []


def test_reference_item_has_the_table_keys_and_the_arg_max_label():
    item = reference_item(
        "frames",
        "frames/cam-7/f.jpg",
        '"abc"',
        datetime(2026, 11, 22, 9, 30, 1, 250_000, tzinfo=UTC),
        ["bus", "car", "empty"],
        np.array([0.1, 0.7, 0.2]),
    )
    assert item["object_id"] == {"S": "frames/frames/cam-7/f.jpg"}
    assert item["object_version"] == {"S": "abc"}
    assert item["camera_id"] == {"S": "cam-7"}
    assert item["captured_at"] == {"S": "2026-11-22T09:30:01.250Z"}
    assert item["label"] == {"S": "car"}
    assert item["probabilities"]["M"]["car"] == {"N": "0.7"}


def test_onnxruntime_profile_is_summed_per_operator_per_run():
    events = [
        {"cat": "Node", "name": "conv1_kernel_time", "dur": 4000, "args": {"op_name": "Conv"}},
        {"cat": "Node", "name": "conv2_kernel_time", "dur": 2000, "args": {"op_name": "Conv"}},
        {"cat": "Node", "name": "dq_kernel_time", "dur": 2000, "args": {"op_name": "DequantizeLinear"}},
        {"cat": "Node", "name": "conv1_fence_before", "dur": 999, "args": {"op_name": "Conv"}},
        {"cat": "Session", "name": "model_run", "dur": 9000},
    ]
    assert summarize_onnxruntime_profile(events, runs=2) == [
        {"op": "Conv", "ms_per_run": 3.0, "share_pct": 75.0},
        {"op": "DequantizeLinear", "ms_per_run": 1.0, "share_pct": 25.0},
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"frames": 195}, "multiple of the batch size"),
        ({"frames": 5}, "at least the batch size"),
        ({"train_per_label": 3}, "at least 10"),
        ({"cold_starts": 0}, "--cold-starts"),
        ({"paths": ("gpu",)}, "unknown"),
    ],
)
def test_config_validation_names_the_option(changes, message):
    with pytest.raises(BenchError, match=message):
        BenchConfig(**changes).validate()


def test_default_config_is_the_issue_setup():
    config = BenchConfig()
    config.validate()
    assert (config.frames, config.width, config.height, config.weights) == (200, 1280, 720, "none")
    assert config.paths == ("reference", "fp32", "int8")


IMPORTTIME = """import time: self [us] | cumulative | imported package
import time:       120 |        120 |   _io
import time:      2000 |      45000 |   numpy
import time:       300 |        300 |       onnxruntime.capi
import time:      5000 |     310000 |   onnxruntime
import time:       900 |     520000 | functions.handler
some warning line
"""


def test_parse_importtime_reads_the_cumulative_column_of_the_named_modules():
    assert parse_importtime(IMPORTTIME, ("numpy", "onnxruntime", "boto3", "functions.handler")) == {
        "numpy": 0.045,
        "onnxruntime": 0.31,
        "functions.handler": 0.52,
    }


def test_cache_keys_separate_everything_the_models_depend_on(tmp_path):
    base = BenchConfig(cache_dir=tmp_path)
    dirs = {
        model_dir_for(base, "fp32"),
        model_dir_for(base, "int8"),
        model_dir_for(BenchConfig(cache_dir=tmp_path, seed=1), "fp32"),
        model_dir_for(BenchConfig(cache_dir=tmp_path, train_per_label=40), "fp32"),
        model_dir_for(BenchConfig(cache_dir=tmp_path, weights="imagenet"), "fp32"),
    }
    assert len(dirs) == 5
    assert all(path.parent == tmp_path / "models" for path in dirs)
    # the renderer's fingerprint is part of the key: new frames, new models
    assert "-r" in model_dir_for(base, "fp32").name
    assert training_cache_dir(base) != training_cache_dir(BenchConfig(cache_dir=tmp_path, seed=1))


def test_backbone_paths_are_the_ones_the_pipeline_results_named(tmp_path):
    config = BenchConfig(cache_dir=tmp_path)
    files = {}
    for precision, names in (("fp32", ("fp32",)), ("int8", ("fp32", "int8"))):
        model_dir = model_dir_for(config, precision)
        model_dir.parent.mkdir(parents=True, exist_ok=True)
        record = {}
        for name in names:
            path = tmp_path / f"{precision}-run-{name}.onnx"
            path.write_bytes(b"onnx")
            record[name] = str(path)
        files[precision] = record
        backbones_record(model_dir).write_text(json.dumps(record))
    # fp32 from the fp32 model's training, int8 from the int8 model's.
    assert backbone_paths(config) == {
        "fp32": Path(files["fp32"]["fp32"]),
        "int8": Path(files["int8"]["int8"]),
    }
    Path(files["int8"]["int8"]).unlink()
    with pytest.raises(BenchError, match="are gone.*delete"):
        backbone_paths(config)
