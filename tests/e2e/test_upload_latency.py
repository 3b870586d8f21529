"""Upload-to-result latency through the whole local system (bench/perf/upload_latency.py), on a few frames."""

from __future__ import annotations

import pytest

from bench.perf.upload_latency import Load, measure_upload_to_result

pytestmark = pytest.mark.e2e


def test_every_upload_is_timed_until_its_result_is_readable(moto_server, tiny_model_dir, tmp_path):
    loads = (Load("steady", 3, 5.0), Load("burst", 4, None))
    measured = measure_upload_to_result(
        moto_server.endpoint_url, tiny_model_dir, tmp_path, loads=loads, batch_size=10, window_s=1.0
    )
    assert (measured["batch_size"], measured["window_s"]) == (10, 1.0)
    assert list(measured["loads"]) == ["steady", "burst"]
    for load in loads:
        figures = measured["loads"][load.name]
        assert (figures["frames"], figures["frames_per_second"]) == (load.frames, load.frames_per_second)
        assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["max_ms"]
