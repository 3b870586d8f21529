"""bench.perf.pricing: the cost arithmetic on fixed numbers (no measurement involved)."""

from __future__ import annotations

import base64

import pytest

from bench.perf.pricing import (
    PRICES,
    Line,
    Option,
    bill_lines,
    billed_seconds,
    cost_per_million,
    dynamodb_item_bytes,
    memory_for_vcpus,
    recommend,
    rekognition_per_million,
    review_share_cap,
    write_units,
)

# A measurement as bench/requests.py reports it (numbers chosen to make the sums easy).
MEASURED = {
    "per_frame": {
        "s3:GetObject frames": 1.0,
        "dynamodb:PutItem results": 1.0,
        "dynamodb:GetItem state": 1.0,
        "dynamodb:PutItem state": 1.0,
        "events:PutEvents bus": 0.1,
        "events:PutEvents entries bus": 0.1,
        "sqs:SendMessage (S3 notification)": 1.0,
    },
    "per_invocation": {"sqs:ReceiveMessage queue": 1.0, "sqs:DeleteMessageBatch queue": 1.0},
    "dynamodb_items": {
        "dynamodb:PutItem results": {"write_units_per_frame": 1.0},
        "dynamodb:PutItem results by_camera index copy": {"write_units_per_frame": 1.0},
        "dynamodb:PutItem state": {"write_units_per_frame": 2.0},
    },
    "log_bytes_per_frame": 2000,
}


def test_every_price_names_its_source():
    assert all(
        price.source.startswith("https://aws.amazon.com/") and price.usd > 0 for price in PRICES.values()
    )


def test_billed_seconds_round_up_to_the_millisecond():
    assert billed_seconds(0.1) == 0.1
    assert billed_seconds(0.1001) == 0.101
    assert billed_seconds(0.0000001) == 0.001


def test_item_size_as_dynamodb_counts_it():
    assert dynamodb_item_bytes({"ab": {"S": "héllo"}}) == 2 + 6  # UTF-8 bytes
    assert dynamodb_item_bytes({"n": {"N": "12345"}}) == 1 + 4  # 5 digits: 3 bytes + 1
    assert dynamodb_item_bytes({"n": {"N": "-0.0500"}}) == 1 + 2  # "5": 1 byte + 1
    assert dynamodb_item_bytes({"b": {"B": base64.b64encode(b"xyz").decode()}}) == 1 + 3
    assert dynamodb_item_bytes({"t": {"BOOL": True}, "z": {"NULL": True}}) == 4
    assert dynamodb_item_bytes({"m": {"M": {"k": {"S": "vv"}}}}) == 1 + 3 + 1 + 1 + 2
    assert dynamodb_item_bytes({"l": {"L": [{"S": "a"}, {"N": "1"}]}}) == 1 + 3 + (1 + 1) + (1 + 2)
    assert [write_units(size) for size in (0, 1024, 1025, 3000)] == [1, 1, 2, 3]
    with pytest.raises(ValueError, match="XX"):
        dynamodb_item_bytes({"x": {"XX": 1}})


def test_measured_lines_are_priced_by_what_bills_them():
    lines = {line.name: line for line in bill_lines(MEASURED)}
    # PutItem and PutEvents requests are billed through their units and entries, not per request.
    assert "dynamodb:PutItem results" not in lines
    assert lines["events:PutEvents bus"] == Line("events:PutEvents bus", "eventbridge_event", per_frame=0.1)
    assert lines["dynamodb:GetItem state"] == Line(
        "dynamodb:GetItem state", "dynamodb_read_unit", per_frame=1.0
    )
    assert lines["sqs:ReceiveMessage queue"].units_per_frame(10) == pytest.approx(0.1)
    assert lines["Lambda requests"].units_per_frame(10) == pytest.approx(0.1)
    assert lines["dynamodb:PutItem state (write units)"].per_frame == 2.0
    assert lines["CloudWatch Logs ingestion"].per_frame == pytest.approx(2e-6)  # GB
    with pytest.raises(ValueError, match="no price"):
        bill_lines({**MEASURED, "per_frame": {"kinesis:PutRecord stream": 1.0}})


def test_cost_per_million_by_line_and_service():
    # 10 frames in 1.000 s at 1,024 MB, arm64: 100,000 invocations x 1 GB-s.
    cost = cost_per_million(1.0, 10, 1024, "arm64", bill_lines(MEASURED))
    assert cost.lambda_compute == pytest.approx(100_000 * 0.0000133334)  # $1.33
    services = cost.by_service()
    assert services["Lambda requests"] == pytest.approx(0.02)
    assert services["S3"] == pytest.approx(0.40)  # GetObject; no tags
    assert services["DynamoDB"] == pytest.approx(4 * 0.625 + 0.125)  # 4 write units + 1 read unit
    assert services["SQS"] == pytest.approx((1.0 + 0.2) * 0.40)  # send per frame, receive + delete per batch
    assert services["EventBridge"] == pytest.approx(0.10)
    assert services["CloudWatch Logs"] == pytest.approx(2000 * 0.50 / 1000)  # 2 GB per million frames
    assert cost.total == pytest.approx(sum(services.values()))
    x86 = cost_per_million(1.0, 10, 1024, "x86", bill_lines(MEASURED))
    assert x86.lambda_compute / cost.lambda_compute == pytest.approx(0.0000166667 / 0.0000133334)
    # Batch 1: the per-invocation lines cost ten times as much per frame.
    single = cost_per_million(0.1, 1, 1024, "arm64", bill_lines(MEASURED)).by_service()
    assert single["SQS"] == pytest.approx((1.0 + 2.0) * 0.40)
    assert single["Lambda requests"] == pytest.approx(0.20)


def test_a_tag_write_per_frame_costs_five_dollars_a_million():
    tagged = {**MEASURED, "per_frame": {**MEASURED["per_frame"], "s3:PutObjectTagging frames": 1.0}}
    with_tags = cost_per_million(1.0, 10, 1024, "arm64", bill_lines(tagged))
    without = cost_per_million(1.0, 10, 1024, "arm64", bill_lines(MEASURED))
    assert with_tags.total - without.total == pytest.approx(5.00)


def test_memory_for_vcpus_and_peak_rss():
    assert memory_for_vcpus(1) == 1769
    assert memory_for_vcpus(2) == 3538
    assert memory_for_vcpus(1, peak_rss_mib=1600) == 2048  # 1600 x 1.25 rounded up to 64 MB
    assert memory_for_vcpus(8) == 10240


def test_recommend_picks_the_cheapest_measured_option():
    options = [
        Option(threads=1, batch_size=10, seconds_per_batch=0.60),  # 1,769 MB x 0.6 s
        Option(threads=2, batch_size=10, seconds_per_batch=0.40),  # 3,538 MB x 0.4 s: more GB-s
        Option(threads=1, batch_size=1, seconds_per_batch=0.07),  # 10x the requests
    ]
    lines = bill_lines(MEASURED)
    best = recommend(options, lines, peak_rss_mib=500)
    assert (best["memory_mb"], best["onnx_threads"], best["batch_size"]) == (1769, 1, 10)
    assert best["rekognition_ratio"] == pytest.approx(
        rekognition_per_million() / best["usd_per_million"]["total"], rel=1e-3
    )
    with pytest.raises(ValueError):
        recommend([], lines)


def test_review_lines_are_bounded_by_the_fleets_quota():
    # A short run marks every unsure frame; a camera of the fleet (360 frames an hour) marks at
    # most 20 an hour (CAMSORT_REVIEW_PER_HOUR), then stops asking.
    reviewed = {
        **MEASURED,
        "dynamodb_items": {
            **MEASURED["dynamodb_items"],
            "dynamodb:PutItem review": {"write_units_per_frame": 1.0, "writes_per_frame": 0.8},
            "dynamodb:UpdateItem review": {"write_units_per_frame": 0.8, "writes_per_frame": 0.8},
        },
    }
    assert review_share_cap() == pytest.approx(20 / 360)
    capped = {line.name: line for line in bill_lines(reviewed)}
    scale = (20 / 360) / 0.8
    assert capped["dynamodb:PutItem review (write units)"].per_frame == pytest.approx(1.0 * scale)
    assert capped["dynamodb:UpdateItem review (write units)"].per_frame == pytest.approx(0.8 * scale)
    assert capped["dynamodb:PutItem results (write units)"].per_frame == 1.0  # others untouched

    as_measured = {line.name: line for line in bill_lines(reviewed, review_cap=1.0)}
    assert as_measured["dynamodb:PutItem review (write units)"].per_frame == 1.0
    few = {**reviewed, "dynamodb_items": {**reviewed["dynamodb_items"], "dynamodb:PutItem review": {
        "write_units_per_frame": 0.01, "writes_per_frame": 0.01}}}  # fmt: skip
    assert {line.name: line for line in bill_lines(few)}[
        "dynamodb:PutItem review (write units)"
    ].per_frame == 0.01
