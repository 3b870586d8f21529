"""Where the demo keeps its files, and the one demo a ``--keep-running`` run leaves behind.

The state file (endpoint, stage, region, moto server pid) is what lets the operator commands
(`camsort results`, `cameras`, `events`, `dashboard`, `review`, `compare`, `audit`, `promote`,
`rollback`) find a running demo without options, and ``camsort demo --stop`` stop its server.

One kept-running demo per cache dir: a second ``--keep-running`` is refused while the first
still answers. With two, every command would need telling which one, and a server that no
file points at could not be stopped.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from functions import env
from functions.errors import ConfigurationError
from infra.deploy.topology import StackNames
from infra.local.stack import DEFAULT_REGION, local_client

STATE_FILENAME = "state.json"


def default_cache_dir() -> Path:
    return Path(os.environ.get(env.CACHE_DIR) or Path.home() / ".cache" / "camsort")


def state_path(cache_dir: Path | None = None) -> Path:
    return Path(cache_dir or default_cache_dir()) / "demo" / STATE_FILENAME


@dataclass(frozen=True)
class RunningDemo:
    """What a ``--keep-running`` demo recorded: where its stack answers, and which stage it is."""

    endpoint_url: str
    stage: str
    region: str
    pid: int | None  # the moto server the demo started; None: a server it was given
    path: Path  # the state file

    @property
    def names(self) -> StackNames:
        return StackNames.for_stage(self.stage)

    @property
    def table(self) -> str:
        return self.names.table

    def describe(self) -> str:
        started = f"pid {self.pid}" if self.pid else "a server it did not start"
        return f"stage {self.stage} at {self.endpoint_url}, {started}, recorded in {self.path}"


def write_state(demo_dir: Path, endpoint_url: str, stage: str, pid: int | None) -> Path:
    path = Path(demo_dir) / STATE_FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "endpoint_url": endpoint_url,
        "stage": stage,
        "table": StackNames.for_stage(stage).table,
        "region": DEFAULT_REGION,
        "pid": pid,
    }
    path.write_text(json.dumps(record, indent=2) + "\n")
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


def recorded_demo(cache_dir: Path | None = None) -> RunningDemo | None:
    """The demo the state file records (not checked to be alive), or None."""
    path = state_path(cache_dir)
    state = read_state(path.parent)
    if not state:
        return None
    # A state file written before the stage was recorded: its table names the stage.
    stage = state.get("stage") or StackNames.stage_of(str(state.get("table", ""))) or "local"
    pid = state.get("pid")
    return RunningDemo(
        endpoint_url=str(state["endpoint_url"]),
        stage=str(stage),
        region=str(state.get("region") or DEFAULT_REGION),
        pid=pid if isinstance(pid, int) else None,
        path=path,
    )


def running_demo(cache_dir: Path | None = None) -> RunningDemo:
    """The recorded demo, checked to answer; otherwise a ConfigurationError saying what to do."""
    demo = recorded_demo(cache_dir)
    if demo is None:
        raise ConfigurationError(
            f"no running demo recorded in {state_path(cache_dir)} and no target given; run "
            "`camsort demo --keep-running` first, or pass --endpoint-url (a local server) or the "
            "stage's table/--stage (AWS)"
        )
    problem = liveness_problem(demo)
    if problem:
        raise ConfigurationError(problem)
    return demo


def liveness_problem(demo: RunningDemo) -> str | None:
    """None when the demo's stack answers; else why not, in one sentence.

    A real, cheap call with the local admin's credentials: DescribeTable of the stage's results
    table. (moto's /moto-api/data.json is no liveness check: it answers 500 once a demo has run.)
    """
    from botocore.config import Config
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    quick = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1})
    dynamodb = local_client("dynamodb", demo.endpoint_url, demo.region, config=quick)
    try:
        dynamodb.describe_table(TableName=demo.table)
    except (ConnectionError, HTTPClientError):
        return (
            f"the demo's moto server is not running ({demo.describe()}); start one with "
            "`camsort demo --keep-running`"
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        return (
            f"the server at {demo.endpoint_url} answers, but not as the demo recorded in {demo.path} "
            f"({code} on table {demo.table}); run `camsort demo --stop`, then `camsort demo --keep-running`"
        )
    return None


def refuse_second_demo(cache_dir: Path | None = None, console: Console | None = None) -> None:
    """Before a ``--keep-running`` demo: refuse while another one answers; forget a dead one."""
    demo = recorded_demo(cache_dir)
    if demo is None:
        return
    if liveness_problem(demo) is None or (demo.pid is not None and _is_moto_server(demo.pid)):
        raise ConfigurationError(
            f"a kept-running demo is already up: {demo.describe()}; its commands keep working. "
            "Stop it first with `camsort demo --stop`, or run this demo without --keep-running"
        )
    (console or Console()).print(f"Forgetting the demo recorded in {demo.path}: it is no longer running.")
    demo.path.unlink(missing_ok=True)


def stop_demo_server(cache_dir: Path | None = None, console: Console | None = None) -> bool:
    """Stop the moto server a ``--keep-running`` demo started (by the pid it recorded), and say so."""
    console = console or Console()
    demo = recorded_demo(cache_dir)
    if demo is None:
        console.print(f"No kept-running demo recorded in {state_path(cache_dir)}; nothing to stop.")
        return False
    stopped = False
    if demo.pid is None:
        console.print(
            f"The demo ran on a server it did not start ({demo.endpoint_url}); left running, record removed."
        )
    elif _is_moto_server(demo.pid):
        os.kill(demo.pid, signal.SIGTERM)
        _wait_for_exit(demo.pid)
        stopped = True
        console.print(f"Stopped the demo's moto server: {demo.describe()}.")
    else:
        console.print(
            f"The demo's moto server (pid {demo.pid}, {demo.endpoint_url}) is not running any more."
        )
    demo.path.unlink(missing_ok=True)
    return stopped


def _wait_for_exit(pid: int, timeout_s: float = 10.0) -> None:
    # So that "stopped" is true when it is printed, and a new demo can start at once.
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and _is_moto_server(pid):
        time.sleep(0.05)


def _is_moto_server(pid: int) -> bool:
    # Only signal the process the demo started: a recycled pid would run something else.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    zombie = "\nState:\tZ" in status
    return b"moto.server" in cmdline and not zombie
