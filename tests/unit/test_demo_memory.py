"""bench.demo_memory: the whole process tree's peak (children included) and its markdown."""

from __future__ import annotations

import sys

from bench.demo_memory import demo_memory_markdown, whole_tree

# A parent that starts a child holding ~200 MB, then exits: the tree's peak includes the child's.
CHILD_HOLDS = (
    "import subprocess, sys; subprocess.run([sys.executable, '-c', "
    "'import time; block = bytearray(200 * 2**20); block[::4096] = b\"x\" * len(block[::4096]); time.sleep(1.0)'])"
)


def test_the_whole_tree_counts_a_childs_memory():
    figures = whole_tree([sys.executable, "-c", CHILD_HOLDS], interval_s=0.05)
    assert figures["exit_code"] == 0
    assert figures["peak_tree_rss_mib"] >= 200  # the child's block; the parent alone is far smaller


def test_the_markdown_lists_stages_then_runs():
    figures = {
        "profile": {
            "created_at": "2026-12-06T10:00:00Z", "load_average": [1.5, 1.0, 1.0], "seconds": 90.0,
            "stages": [{"stage": "tf2onnx", "peak_rss_mib": 2408, "seconds": 37.0}],
        },
        "demo": {
            "created_at": "2026-12-06T11:00:00Z", "load_average": [0.5, 1.0, 1.0], "command": ["camsort", "demo"],
            "seconds": 200.0, "peak_tree_rss_mib": 3100, "exit_code": 0,
        },
    }  # fmt: skip
    markdown = demo_memory_markdown(figures)
    assert "| tf2onnx | 2,408 | 37.0 |" in markdown
    assert "| demo | `camsort demo` | 200.0 | — | 3,100 | — | 0.5 |" in markdown
    assert markdown.index("tf2onnx") < markdown.index("| demo |")
