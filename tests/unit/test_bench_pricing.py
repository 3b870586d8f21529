"""bench.perf.pricing: the cost arithmetic on fixed numbers (no measurement involved)."""

from __future__ import annotations

import pytest

from bench.perf.pricing import (
    PRICES,
    FrameCalls,
    Option,
    billed_seconds,
    cost_per_million,
    frame_calls,
    memory_for_vcpus,
    recommend,
    rekognition_per_million,
)


def test_every_price_names_its_source():
    assert all(
        price.source.startswith("https://aws.amazon.com/") and price.usd > 0 for price in PRICES.values()
    )


def test_billed_seconds_round_up_to_the_millisecond():
    assert billed_seconds(0.1) == 0.1
    assert billed_seconds(0.1001) == 0.101
    assert billed_seconds(0.0000001) == 0.001


def test_cost_per_million_by_part():
    # 10 frames in 1.000 s at 1,024 MB, arm64: 100,000 invocations x 1 GB-s.
    cost = cost_per_million(1.0, 10, 1024, "arm64", FrameCalls())
    assert cost.lambda_compute == pytest.approx(100_000 * 0.0000133334)  # $1.33
    assert cost.lambda_requests == pytest.approx(0.02)
    assert cost.s3 == pytest.approx(0.40 + 5.00)  # GetObject + PutObjectTagging
    assert cost.dynamodb == pytest.approx(2 * 0.625)  # the item + its GSI copy
    assert cost.sqs == pytest.approx((100_000 * 2 + 1_000_000) * 0.40 / 1e6)
    assert cost.total == pytest.approx(1.33334 + 0.02 + 5.40 + 1.25 + 0.48)
    x86 = cost_per_million(1.0, 10, 1024, "x86", FrameCalls())
    assert x86.lambda_compute / cost.lambda_compute == pytest.approx(0.0000166667 / 0.0000133334)


def test_tags_are_the_largest_request_cost():
    with_tags = cost_per_million(1.0, 10, 1024, calls=frame_calls(write_tags=True))
    without = cost_per_million(1.0, 10, 1024, calls=frame_calls(write_tags=False))
    assert with_tags.s3 - without.s3 == pytest.approx(5.00)


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
    best = recommend(options, peak_rss_mib=500)
    assert (best["memory_mb"], best["onnx_threads"], best["batch_size"]) == (1769, 1, 10)
    assert best["rekognition_ratio"] == pytest.approx(
        rekognition_per_million() / best["usd_per_million"]["total"], rel=1e-3
    )
    with pytest.raises(ValueError):
        recommend([])
