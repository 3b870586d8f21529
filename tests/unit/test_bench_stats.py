"""bench.stats: the arithmetic behind every figure of results.json, on fixed numbers."""

from __future__ import annotations

import pytest

from bench import stats


def test_percentiles_interpolate_between_ranks_like_numpy():
    samples = [float(v) for v in range(1, 101)]  # 1..100
    assert stats.percentile(samples, 50) == 50.5
    assert stats.percentile(samples, 95) == pytest.approx(95.05)
    assert stats.percentile([7.0], 95) == 7.0


def test_percentile_refuses_empty_or_out_of_range():
    with pytest.raises(ValueError, match="no samples"):
        stats.percentile([], 50)
    with pytest.raises(ValueError, match="outside"):
        stats.percentile([1.0], 101)


def test_summarize_ms_converts_seconds_and_reports_every_field():
    summary = stats.summarize_ms([0.010, 0.020, 0.030, 0.040])
    assert summary == {
        "n": 4,
        "p50_ms": 25.0,
        "p95_ms": 38.5,
        "mean_ms": 25.0,
        "min_ms": 10.0,
        "max_ms": 40.0,
    }


@pytest.mark.parametrize("bad", [[], [float("nan")], [-0.001], [float("inf")]])
def test_summarize_ms_rejects_meaningless_durations(bad):
    with pytest.raises(ValueError):
        stats.summarize_ms(bad)


def test_throughput_is_frames_per_second():
    assert stats.throughput(200, 4.0) == 50.0
    assert stats.throughput(10, 3.0) == 3.333
    with pytest.raises(ValueError, match="positive duration"):
        stats.throughput(10, 0.0)
    with pytest.raises(ValueError, match="non-negative"):
        stats.throughput(-1, 1.0)


def test_ratio_is_literal_and_none_when_undefined():
    assert stats.ratio(300.0, 20.0) == 15.0
    assert stats.ratio(5.0, 50.0) == 0.1
    assert stats.ratio(None, 2.0) is None
    assert stats.ratio(2.0, None) is None
    assert stats.ratio(2.0, 0.0) is None


def test_median_of_odd_and_even_counts():
    assert stats.median([3.0, 1.0, 2.0]) == 2.0
    assert stats.median([4.0, 1.0, 3.0, 2.0]) == 2.5
    with pytest.raises(ValueError):
        stats.median([])


def test_agreement_counts_equal_positions():
    assert stats.agreement(["bus", "car", "empty", "car"], ["bus", "car", "car", "car"]) == 0.75
    assert stats.agreement(["bus"], ["bus"]) == 1.0
    with pytest.raises(ValueError, match="length"):
        stats.agreement(["bus"], ["bus", "car"])
    with pytest.raises(ValueError, match="no labels"):
        stats.agreement([], [])


def test_rss_from_linux_kib_and_share():
    assert stats.rss_mib(512_000) == 500.0
    assert stats.share(25.0, 200.0) == 12.5
    assert stats.share(1.0, 0.0) is None
