"""The tour as a user takes it: `camsort demo --keep-running`, then every command it prints and
every command of the README's tour, exactly as printed, as subprocesses, with no extra options.

The demo is small (2 cameras, 3 frames each, the tiny model, a shadow candidate so that the
lifecycle commands have something to compare and promote); what follows it is not adapted in
any way: each line is split like a shell would and run as is, in order, and must exit 0 with
plausible output. tests/unit/test_docs.py checks that the README shows the list the demo prints
(infra/demo/tour.py), so neither can drift from what this test runs.
"""

from __future__ import annotations

import re
import shlex

import pytest

from camsort.cli import main
from infra import PROJECT_ROOT
from infra.demo.tour import INTRO, START, STOP, tour_commands
from tests.fixtures.cli import TRACEBACK, camsort
from tests.fixtures.readme import tour_commands as shown_tour
from tests.functional.test_shadow import write_candidate

pytestmark = pytest.mark.e2e


def printed_commands(output: str) -> list[str]:
    """Every line of the demo's output that is a `camsort` command (a command a user can copy)."""
    found = []
    for line in output.splitlines():
        tokens = line.split()
        if len(tokens) >= 2 and tokens[0] == "camsort" and tokens[1] in main.commands:
            found.append(" ".join(tokens))
    return found


def test_the_tour_runs_as_printed(tiny_model_dir, tmp_path):
    cache, work = tmp_path / "cache", tmp_path / "work"
    work.mkdir()
    candidate = write_candidate(tmp_path / "candidate")
    small = ["--model", str(tiny_model_dir), "--cameras", "2", "--frames", "3", "--rate", "0", "--no-regions"]
    start = [*shlex.split(START), *small, "--shadow", "--candidate", str(candidate)]
    ran: list[tuple[str, int]] = []
    try:
        demo = camsort(start, cache_dir=cache, cwd=work)
        assert demo.returncode == 0, demo.stdout[-4000:]
        tour = demo.stdout[demo.stdout.index(INTRO) + len(INTRO) :]
        assert [line.strip() for line in tour.splitlines() if line.strip()] == tour_commands(shadow=True)

        _, readme = shown_tour((PROJECT_ROOT / "README.md").read_text())
        assert readme, "the README shows no tour after a --keep-running demo"
        # In order, each once; `camsort demo --stop` last, once everything else has run.
        commands = list(dict.fromkeys(c for c in [*printed_commands(demo.stdout), *readme] if c != STOP))
        outputs = {}
        for command in commands:
            done = camsort(command, cache_dir=cache, cwd=work)
            ran.append((command, done.returncode))
            assert done.returncode == 0 and TRACEBACK not in done.stdout, f"{command}:\n{done.stdout[-3000:]}"
            outputs[command] = done.stdout

        # A second kept-running demo is refused while this one runs; the first keeps working.
        second = camsort([*shlex.split(START), *small], cache_dir=cache, cwd=work)
        ran.append(("(second) " + " ".join(second.args[3:]), second.returncode))
        assert second.returncode == 1 and "a kept-running demo is already up" in second.stdout, second.stdout
        assert TRACEBACK not in second.stdout
        assert_plausible(outputs, work)
    finally:
        stop = camsort(STOP, cache_dir=cache, cwd=work)
        ran.append((STOP, stop.returncode))
        print("\n".join(f"exit {code}: {command}" for command, code in ran))
    assert stop.returncode == 0 and "Stopped the demo's moto server" in stop.stdout, stop.stdout
    gone = camsort(commands[0], cache_dir=cache, cwd=work)
    assert gone.returncode == 1 and "no running demo recorded" in gone.stdout, gone.stdout


def assert_plausible(outputs: dict[str, str], work) -> None:
    """What each command printed is what the small demo made: its cameras, frames, events, account."""
    # cam-01: its 3 frames + 2 of the 4 bad objects (they go round-robin): 5 results in the window.
    assert "(5 shown)" in outputs["camsort results --camera cam-01 --last 10m"]
    assert "camsort-state-local: 2 camera(s)" in outputs["camsort cameras"]
    assert "cam-01" in outputs["camsort cameras"] and "cam-02" in outputs["camsort cameras"]
    events = re.search(r"cam-01, .* \((\d+) events\)", outputs["camsort events --camera cam-01 --last 1h"])
    assert events and int(events.group(1)) >= 1
    audit = outputs["camsort audit --last 1h"]
    assert re.search(r"UNACCOUNTED\D*0\b", audit, re.IGNORECASE), audit
    page = (work / "camsort-dashboard.html").read_text()
    assert "cam-01" in page and "cam-02" in page
    assert "agreement" in outputs["camsort compare --since 1h"].lower()
    assert "promote on local" in outputs["camsort promote --force --reason demo"]
    assert "rollback on local" in outputs["camsort rollback --reason demo"]
