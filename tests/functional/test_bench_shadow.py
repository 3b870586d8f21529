"""bench/shadow.py on the tiny models: the figures are there and consistent."""

from __future__ import annotations

from bench.shadow import measure_shadow, shadow_markdown, shadow_stage
from tests.functional.test_shadow import write_candidate


def test_measure_shadow_reports_the_added_time_per_sampled_frame(tiny_model_dir, tmp_path):
    figures = measure_shadow(
        tiny_model_dir, write_candidate(tmp_path / "candidate"), batch_size=3, repeats=2, threads=1
    )
    assert figures["batch_size"] == 3 and figures["threads"] == 1
    assert figures["shadow_added_ms_per_sampled_frame"] >= figures["shadow_inference_ms_per_frame"] > 0
    assert figures["shadow_write_ms_per_frame"] >= 0


def test_the_bench_stage_needs_both_precisions(tiny_model_dir):
    results: dict = {}
    shadow_stage({"fp32": tiny_model_dir}, results)
    assert "shadow" not in results and "needs both" in results["notes"][0]


def test_the_stage_writes_its_section_into_results_md(tiny_model_dir, tmp_path):
    results: dict = {}
    candidate = write_candidate(tmp_path / "candidate")
    shadow_stage({"fp32": tiny_model_dir, "int8": candidate}, results, batch_size=2)
    section = shadow_markdown(results)
    assert section.startswith("\n## Shadow scoring")
    added = results["shadow"]["shadow_added_ms_per_sampled_frame"]
    assert f"| **added by shadow scoring, per sampled frame** | {added} |" in section
    assert shadow_markdown({}) == ""  # the stage did not run: no section
