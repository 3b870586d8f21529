"""Shared pytest configuration.

Fixtures live in ``tests/fixtures/<area>.py`` modules, registered below, so each area of
the code owns its fixtures without a crowded conftest.
"""

import os

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
]
