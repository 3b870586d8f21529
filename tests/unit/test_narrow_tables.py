"""The result tables at 80 columns (rich's Console(width=80)): nothing that identifies a row folds."""

from __future__ import annotations

import io
from collections import Counter

from rich.console import Console

from infra.demo.live_view import LiveState, render_live
from infra.ops.results_query import results_table

FILES = [f"20261201T0228{second:02d}195Z.jpg" for second in range(30, 35)]
ITEMS = [
    {"key": f"frames/cam-01/{FILES[0]}", "captured_at": "2026-12-01T02:28:30.195Z", "status": "ok",
     "label": "bus", "confidence": 0.9712, "latency_ms": 104.2},
    {"key": f"frames/cam-01/{FILES[1]}", "captured_at": "2026-12-01T02:28:31.195Z", "status": "ok",
     "label": "unknown", "confidence": 0.3401, "latency_ms": 97.0},
    {"key": f"frames/cam-01/{FILES[2]}", "captured_at": "2026-12-01T02:28:32.195Z", "status": "rejected",
     "reason": "truncated_or_corrupt", "latency_ms": 0.4},
    {"key": f"frames/cam-01/{FILES[3]}", "captured_at": "2026-12-01T02:28:33.195Z", "status": "rejected",
     "reason": "not_jpeg_or_png"},
    {"key": f"frames/cam-01/{FILES[4]}", "captured_at": "2026-12-01T02:28:34.195Z", "status": "rejected",
     "reason": "too_many_bytes"},
]  # fmt: skip


def _render(renderable) -> list[str]:
    buffer = io.StringIO()
    Console(file=buffer, width=80, color_system=None).print(renderable)
    return buffer.getvalue().splitlines()


def test_results_table_keeps_times_files_and_reasons_whole_at_80_columns():
    lines = _render(results_table(ITEMS, "camsort-results-local: cam-01 (5 shown)"))
    assert max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    for name in FILES:
        assert sum(name in line for line in lines) == 1, f"{name} folded:\n{text}"
    for moment in ("02:28:30.195Z", "02:28:34.195Z"):
        assert moment in text
    for reason in ("truncated_or_corrupt", "not_jpeg_or_png", "too_many_bytes"):
        assert reason in text, text
    assert "2026-12-01" in lines[0] + lines[1]  # the one day is in the title
    assert "0.971" in text and "104" in text


def test_results_over_several_days_keep_the_full_capture_time():
    items = [dict(ITEMS[0]), dict(ITEMS[1], captured_at="2026-12-02T00:00:01.000Z")]
    text = "\n".join(_render(results_table(items, "two days")))
    assert "2026-12-01T02:28:30.195Z" in text and "2026-12-02T00:00:01.000Z" in text


def test_the_demo_camera_table_fits_80_columns():
    state = LiveState(uploaded=10, results=8, uploads_per_camera=Counter({"cam-01": 5, "cam-02": 5}))
    state.results_per_camera = Counter({"cam-01": 4, "cam-02": 4})
    state.latest = {"cam-01": ITEMS[0], "cam-02": dict(ITEMS[2], camera_id="cam-02")}
    lines = _render(render_live(state, ["cam-01", "cam-02"]))
    assert max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    assert "02:28:30.195Z" in text and "02:28:32.195Z" in text
    assert "truncated_or_corrupt" in text and "0.971" in text
    assert "queue 0 visible / 0 in flight" in text
    state.camera_states = {"cam-01": {"camera_id": "cam-01", "state": "bus"}}
    lines = _render(render_live(state, ["cam-01", "cam-02"]))
    assert max(len(line) for line in lines) <= 80 and "bus" in "\n".join(lines)
