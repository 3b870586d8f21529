"""Where the demo keeps its files, and the state a ``--keep-running`` demo leaves behind.

The state file (endpoint, table, region, moto server pid) is what lets ``camsort results``
find a running demo without options, and ``camsort demo --stop`` stop its server.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from rich.console import Console

from functions import env
from functions.errors import ConfigurationError
from infra.local.stack import DEFAULT_REGION

STATE_FILENAME = "state.json"


def default_cache_dir() -> Path:
    return Path(os.environ.get(env.CACHE_DIR) or Path.home() / ".cache" / "camsort")


def write_state(demo_dir: Path, endpoint_url: str, table: str, pid: int | None) -> Path:
    path = Path(demo_dir) / STATE_FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {"endpoint_url": endpoint_url, "table": table, "region": DEFAULT_REGION, "pid": pid}, indent=2
        )
        + "\n"
    )
    return path


def read_state(demo_dir: Path) -> dict[str, Any] | None:
    path = Path(demo_dir) / STATE_FILENAME
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{path}: not valid JSON ({exc}); delete it and run camsort demo --keep-running"
        ) from exc


def stop_demo_server(cache_dir: Path | None = None, console: Console | None = None) -> bool:
    """Stop the moto server a ``--keep-running`` demo left behind (by the pid it recorded)."""
    console = console or Console()
    demo_dir = Path(cache_dir or default_cache_dir()) / "demo"
    state = read_state(demo_dir)
    if not state:
        console.print(f"No demo server recorded in {demo_dir / STATE_FILENAME}; nothing to stop.")
        return False
    pid = state.get("pid")
    stopped = False
    if isinstance(pid, int) and _is_moto_server(pid):
        os.kill(pid, signal.SIGTERM)
        stopped = True
        console.print(f"Stopped the demo's moto server (pid {pid}, {state.get('endpoint_url')}).")
    else:
        console.print(f"The demo's moto server (pid {pid}) is not running any more.")
    (demo_dir / STATE_FILENAME).unlink(missing_ok=True)
    return stopped


def _is_moto_server(pid: int) -> bool:
    # Only signal the process the demo started: a recycled pid would run something else.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"moto.server" in cmdline
