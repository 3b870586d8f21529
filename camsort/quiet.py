"""Keep TensorFlow's native log lines off the user's screen (progress and results stay).

TensorFlow 2.21 writes absl-format lines from C++ (``I0000 00:00:... port.cc:153] oneDNN custom
operations are on ...``, the CPU-feature notice, grappler's "Starting new session") to file
descriptor 2, some before ``TF_CPP_MIN_LOG_LEVEL`` is read (absl logs everything until
``absl::InitializeLog()``). Neither that variable nor Python's absl settings stop them, so the
commands that load TensorFlow (train, demo, bench, soak) call :func:`quiet_tensorflow` first: it
sets those knobs for what does honour them, and puts a filter on descriptor 2 that drops lines
in absl's format and passes everything else through (tracebacks, click's errors, warnings).

Numerics are untouched: oneDNN stays on (``TF_ENABLE_ONEDNN_OPTS`` is not set), only its notice
goes. ``camsort --debug ...`` shows it all.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

# absl / glog: "I0000 00:00:1796539327.466065   11220 port.cc:153] ..." (I, W and E; F is fatal
# and stays), TensorFlow's older "2026-12-06 07:00:00.123456: I tensorflow/...cc:42] ...", and
# the lines absl and the CPU-feature guard write around them.
NATIVE_LOG_LINE = re.compile(
    rb"^(?:[IWE]\d{4} \d\d:\d\d:[\d.]+\s+\d+ [\w./+-]+:\d+\]"
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] [\w./+-]+:\d+\]"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\.)"
)
_installed = False


def is_native_log_line(line: bytes) -> bool:
    return NATIVE_LOG_LINE.match(line) is not None


def quiet_tensorflow() -> None:
    """Call before TensorFlow is imported; idempotent. Under ``camsort --debug``, nothing is hidden."""
    global _installed
    if _installed or _debugging() or not _stderr_is_descriptor_2():
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # what the C++ side honours once logging is up
    try:
        import absl.logging
    except ImportError:  # no TensorFlow installed: nothing of absl's to quiet
        pass
    else:
        absl.logging.set_verbosity(absl.logging.ERROR)  # Python-side absl (Keras saving, tf2onnx)
    _filter_descriptor_2()
    _installed = True


def _stderr_is_descriptor_2() -> bool:
    # Under click's CliRunner (tests calling a command in process) the streams are in memory:
    # the process's descriptor 2 is not this command's to rewire.
    try:
        return sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


def _debugging() -> bool:
    import click

    context = click.get_current_context(silent=True)
    return bool(context and context.find_root().params.get("debug"))


def _filter_descriptor_2() -> None:
    sys.stderr.flush()
    screen = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    thread = threading.Thread(
        target=_pass_through, args=(read_end, screen), name="native-log-filter", daemon=True
    )
    thread.start()

    def restore() -> None:
        # Give descriptor 2 back and let the filter drain what is left (a final error message).
        sys.stderr.flush()
        os.dup2(screen, 2)
        thread.join(timeout=2)

    atexit.register(restore)


def _pass_through(read_end: int, screen: int) -> None:
    with os.fdopen(read_end, "rb", buffering=0) as source:
        pending = b""
        while chunk := source.read(65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not is_native_log_line(line))
            if b"\r" in pending:  # a progress bar redrawing its line: no log line, show it now
                kept, pending = kept + pending, b""
            _write_all(screen, kept)
        if not is_native_log_line(pending):
            _write_all(screen, pending)


def _write_all(descriptor: int, data: bytes) -> None:
    while data:
        data = data[os.write(descriptor, data) :]
