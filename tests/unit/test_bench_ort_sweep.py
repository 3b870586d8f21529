"""bench.perf.ort_sweep: which configurations are tried, and the summary arithmetic (no timing)."""

from __future__ import annotations

from bench.perf.ort_sweep import OrtConfig, summarize_sweep, sweep_configs


def test_one_option_changed_at_a_time_from_the_baseline():
    configs = sweep_configs(cpus=2)
    base = configs[0]
    assert base == OrtConfig(level="ALL", threads=2, allow_spinning=None, batch_size=10)
    assert len(configs) == len(set(configs))
    for config in configs[1:]:
        changed = [
            f
            for f in ("level", "threads", "allow_spinning", "batch_size")
            if getattr(config, f) != getattr(base, f)
        ]
        assert len(changed) == 1, config
    assert {c.level for c in configs} == {"BASIC", "EXTENDED", "ALL"}
    assert {c.threads for c in configs} == {1, 2}
    assert {c.batch_size for c in configs} == {1, 4, 10}


def test_summary_names_the_fastest_and_its_cost():
    rows = [
        {"config": "base", "ms_per_frame": 40.0, "session_load_s": 0.5},
        {"config": "ALL", "ms_per_frame": 32.0, "session_load_s": 0.9},
        {"config": "t1", "ms_per_frame": 70.0, "session_load_s": 0.4},
    ]
    summary = summarize_sweep(rows)
    assert (summary["baseline"], summary["best"], summary["best_ms_per_frame"]) == ("base", "ALL", 32.0)
    assert summary["speedup_over_baseline"] == 1.25 and summary["extra_session_load_s"] == 0.4
