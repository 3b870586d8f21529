"""What the local function and the project's child processes are given.

infra.local.function_env.function_output: the function's writes go to its run's output, the
rest of the process keeps stdout. The function's own I/O pool counts as the function: its state
and camera-health writes log from there (they used to land on the demo's live view).
infra.checkout_environment: a child process imports this checkout first."""

from __future__ import annotations

import io
import logging
import sys
import threading

import pytest

from functions.concurrency import IO_THREAD_PREFIX
from functions.observability import logger as function_logger
from infra.local.function_env import function_output


@pytest.fixture
def logger_streams():
    """The logger's handlers get back the streams they held (function_output leaves them on the
    stdout it found, here the test's own)."""
    handlers = [h for h in function_logger.handlers if isinstance(h, logging.StreamHandler)]
    streams = [h.stream for h in handlers]
    yield
    for handler, stream in zip(handlers, streams, strict=True):
        handler.setStream(stream)


def _print_in_thread(name: str, text: str) -> None:
    thread = threading.Thread(target=print, args=(text,), name=name)
    thread.start()
    thread.join()


def test_the_caller_and_the_function_pool_write_to_the_run_output(logger_streams, monkeypatch):
    process_stdout, output = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", process_stdout)  # in the test: pytest's capture resets it after setup
    with function_output(output):
        print("from the worker")
        _print_in_thread(f"{IO_THREAD_PREFIX}_0", "from the function's pool")
        _print_in_thread("camera-simulator", "from the simulator")
    print("after the run")

    assert output.getvalue().splitlines() == ["from the worker", "from the function's pool"]
    assert process_stdout.getvalue().splitlines() == ["from the simulator", "after the run"]


def test_a_child_process_imports_this_checkout_first():
    """infra.checkout_environment: what the demo's training children and the moto server get."""
    import os

    from infra import PROJECT_ROOT, checkout_environment

    assert checkout_environment({"PYTHONPATH": "/elsewhere", "A": "1"}) == {
        "PYTHONPATH": f"{PROJECT_ROOT}{os.pathsep}/elsewhere",
        "A": "1",
    }
    assert checkout_environment({})["PYTHONPATH"] == str(PROJECT_ROOT)
