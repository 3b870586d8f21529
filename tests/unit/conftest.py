"""The unit tier: pure and fast. No TensorFlow/Keras/LightGBM, no onnx, no moto, no sockets.

Enforced, not hoped for:

* sockets: every test here runs with pytest-socket's ``disable_socket`` (a connection attempt,
  even to 127.0.0.1, raises ``SocketBlockedError``);
* the moto server: a test here that asks for the ``moto_server`` fixture is a collection error;
* heavy imports: when the run holds only this tier (``pytest tests/unit``, as ``make test`` and
  ``make test-fast`` run it), nothing in :data:`FORBIDDEN` may have been imported by the end of
  collection, and importing one later fails the test that does it.
"""

from __future__ import annotations

import importlib.abc
import sys
from pathlib import Path

import pytest
from pytest_socket import disable_socket, enable_socket

TIER = Path(__file__).resolve().parent
FORBIDDEN = ("tensorflow", "keras", "lightgbm", "onnx", "tf2onnx", "moto")


class _Forbidden(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ModuleNotFoundError(
                f"{name}: the unit tier (tests/unit) runs without {', '.join(FORBIDDEN)}; "
                "move this test to tests/functional, or import the module lazily where it is used"
            )
        return None


def _in_tier(item: pytest.Item) -> bool:
    return TIER in Path(item.path).resolve().parents


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _in_tier(item) and "moto_server" in getattr(item, "fixturenames", ()):
            raise pytest.UsageError(
                f"{item.nodeid}: a unit test cannot use the moto server; move it to tests/e2e"
            )


def pytest_collection_finish(session: pytest.Session) -> None:
    if not session.items or not all(_in_tier(item) for item in session.items):
        return  # a mixed run: other tiers may import what they need
    imported = sorted({name.split(".")[0] for name in sys.modules} & set(FORBIDDEN))
    if imported:
        raise pytest.UsageError(
            f"the unit tier imported {', '.join(imported)} while collecting; "
            "import it lazily, or move the test that needs it to tests/functional"
        )
    sys.meta_path.insert(0, _Forbidden())


@pytest.fixture(autouse=True)
def _no_sockets():
    disable_socket(allow_unix_socket=False)
    yield
    enable_socket()
