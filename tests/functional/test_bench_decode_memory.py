"""make bench's decode-memory stage on small frames: each case decoded in a fresh child process,
its estimate from the header beside the peak RSS growth, and a broken child stops the stage."""

from __future__ import annotations

import pytest

from bench import decode_memory
from bench.config import BenchError
from bench.crafted import PngCase

SMALL = (400, 250)


def test_a_case_alone_reports_its_estimate_its_peak_and_its_outcome():
    row = decode_memory.measure(PngCase(6, 16), 1, SMALL, lifted=True)
    assert row["case"] == "rgba 16-bit" and row["outcomes"] == ["ok"]
    assert row["file_bytes"] > 0 and row["budget_mib"] is None
    # 400 x 250 RGBA: 400,000 bytes held by Pillow alone, so the estimate is at least that.
    assert row["estimate_mib"] >= 0.3 and row["added_peak_mib"] >= 0


def test_a_batch_shares_one_budget_sized_from_the_deployed_memory():
    row = decode_memory.measure(PngCase(2, 8), 3, SMALL)
    assert row["outcomes"] == ["ok", "ok", "ok"]
    assert row["budget_mib"] == round(decode_memory.batch_budget_bytes() / 2**20, 1)


def test_the_section_lists_every_measured_case():
    rows = [decode_memory.measure(PngCase(0, 8), 1, SMALL)]
    figures = {"width": SMALL[0], "height": SMALL[1], "deployed_memory_mb": 1769, "lifted": rows,
               "single": rows, "batch": [], "worst_single": rows[0], "worst_batch": None}  # fmt: skip
    section = decode_memory.decode_memory_markdown(figures)
    assert "| grey 8-bit |" in section and "exit" not in section
    assert section.startswith(decode_memory.MARKERS[0]) and decode_memory.MARKERS[1] in section


def test_a_child_that_fails_stops_the_stage_with_its_error():
    # A 0 x 0 PNG: the child's header read refuses it, the child exits non-zero, and its
    # error reaches the bench's message instead of a table cell.
    with pytest.raises(BenchError, match=r"measuring grey 8-bit \(copies 1\) failed with exit 1(.|\n)*Error"):
        decode_memory.measure(PngCase(0, 8), 1, (0, 0))
