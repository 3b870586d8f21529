"""The e2e tier: a moto server over HTTP on 127.0.0.1, the CLI, the packaged artifact.

Every test here is e2e (marked below), so ``-m "not e2e"`` (``make test-fast``) skips the whole
tier; a test that needs none of that belongs in tests/unit or tests/functional.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TIER = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if TIER in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.e2e)
