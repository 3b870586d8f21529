"""Shared pytest configuration.

Fixtures live in ``tests/fixtures/<area>.py`` modules, registered below, so each area of
the code owns its fixtures without a crowded conftest. They import their heavy libraries
(onnx, TensorFlow) inside the fixtures: the unit tier must collect without them.

Each tier has its own conftest (tests/unit, tests/functional, tests/e2e) saying what it may use.
"""

import os

import pytest

# Keep TensorFlow quiet and deterministic in every test process.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

pytest_plugins: list[str] = [
    "tests.fixtures.tiny_model",
    "tests.fixtures.aws",
    "tests.fixtures.local_stack",
    "tests.fixtures.deploy",
    "tests.fixtures.backbone",
    "tests.fixtures.images",
    "tests.fixtures.model",
    "tests.fixtures.browser",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A test that needs the moto server over HTTP is e2e wherever it lives, so
    # `-m "not e2e"` (make test-fast) never starts one.
    # Likewise a test that builds the Lambda package (pip downloads + a 140 MB zip) is slow.
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "moto_server" in fixtures and not item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.e2e)
        if "lambda_package" in fixtures and not item.get_closest_marker("slow"):
            item.add_marker(pytest.mark.slow)
