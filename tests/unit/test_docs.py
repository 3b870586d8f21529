"""The README cannot drift: what it names exists, with the values it gives.

* every ``CAMSORT_*`` variable it names is defined (``functions/env.py``, or the tests' own);
* every default in its configuration table is what ``load_settings`` actually gives;
* every ``camsort ...`` command line it shows resolves to a command, and every ``--option``
  on it is an option of that command;
* every ``make <target>`` it shows is a target of the Makefile;
* its table of contents lists every section, in order, with working anchors.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import click
import pytest

from camsort.cli import main
from functions import env
from functions.errors import ConfigurationError
from functions.settings import load_settings
from tests.fixtures.deploy import PYTHON312_ENV

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
MIB = 1024 * 1024
# The two variables without defaults, set so that load_settings gives every other default.
REQUIRED = {
    env.MODEL_URI: "s3://models/camsort/",
    env.RESULTS_TABLE: "camsort-results-docs",
    env.MODEL_SHA256: "d" * 64,
}


def _code() -> list[str]:
    """Inline code spans (line breaks inside a span become spaces) and code-block lines."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", README, flags=re.MULTILINE | re.DOTALL)
    # A shell line continued with a trailing backslash is one command.
    lines = [line for block in blocks for line in re.sub(r"\\\n\s*", " ", block).splitlines()]
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", README, flags=re.MULTILINE | re.DOTALL)
    spans = [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", prose)]
    return spans + lines


def _env_names() -> dict[str, str]:
    """CAMSORT_* value -> the constant's name in functions/env.py."""
    return {
        value: name
        for name, value in vars(env).items()
        if name.isupper() and isinstance(value, str) and value.startswith("CAMSORT_")
    }


def test_every_variable_the_readme_names_exists():
    named = set(re.findall(r"\bCAMSORT_[A-Z0-9_]+\b", README))
    assert named, "the README names no CAMSORT_* variable: the pattern is wrong"
    unknown = named - set(_env_names()) - {PYTHON312_ENV}
    assert not unknown, f"README names variables nothing defines: {sorted(unknown)}"


def _config_rows() -> list[tuple[str, str]]:
    start = README.index("### Configuration (environment variables)")
    rows = []
    for line in README[start:].splitlines()[1:]:
        if line.startswith("#"):
            break
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        match = re.fullmatch(r"`(CAMSORT_[A-Z0-9_]+)`", cells[0]) if cells else None
        if match:
            rows.append((match.group(1), cells[1].replace("\\|", "|")))
    return rows


def _documented_value(cell: str) -> Any:
    if re.fullmatch(r"`[^`]*`", cell):
        return cell[1:-1]
    if re.fullmatch(r"\d+ MiB", cell):
        return int(cell.split()[0]) * MIB
    if re.fullmatch(r"[\d,]+", cell):
        return int(cell.replace(",", ""))
    return None  # prose: the value is decided at run time


def _setting(value: Any) -> Any:
    if isinstance(value, re.Pattern):
        return value.pattern
    if isinstance(value, bool):
        return str(value).lower()
    return value


def test_the_configuration_table_gives_the_real_defaults():
    rows = _config_rows()
    names = _env_names()
    assert {name for name, _ in rows} == {name for name in names if name != env.CACHE_DIR}, (
        "the configuration table and functions/env.py's function variables differ"
    )
    defaults = load_settings(REQUIRED)
    # The scheduled audit function's settings (functions/settings.py AuditSettings).
    from functions.settings import load_audit_settings

    audit_required = {env.FRAMES_BUCKET: "b", env.RESULTS_TABLE: "t", env.DEAD_LETTER_QUEUE_URL: "q"}
    audit_defaults = load_audit_settings(audit_required)
    for variable, cell in rows:
        if cell == "(required by the audit function)":
            environ = {name: value for name, value in audit_required.items() if name != variable}
            with pytest.raises(ConfigurationError, match=variable):
                load_audit_settings(environ)
            continue
        if not hasattr(defaults, names[variable].lower()):
            actual = str(_setting(getattr(audit_defaults, names[variable].lower())))
            assert actual == _documented_value(cell), (
                f"{variable}: README says {cell!r}, the default is {actual!r}"
            )
            continue
        if cell == "(required)":
            environ = {name: value for name, value in REQUIRED.items() if name != variable}
            with pytest.raises(ConfigurationError, match=variable):
                load_settings(environ)
            continue
        actual = _setting(getattr(defaults, names[variable].lower()))
        documented = _documented_value(cell)
        if documented is None:
            assert actual is None, f"{variable}: README says {cell!r}, the default is {actual!r}"
        else:
            if isinstance(documented, str) and isinstance(actual, int | float):
                actual = str(actual)  # a number written as code: `0.05`, `20`
            assert actual == documented, f"{variable}: README says {documented!r}, the default is {actual!r}"


def _camsort_lines() -> list[str]:
    found = []
    for text in _code():
        for part in re.split(r"\s(?:\||&&|;)\s", text):
            match = re.match(r"^\s*(?:\$ )?(?:[A-Z_]+=\S+ )*(?:\S*/)?camsort (.+)$", part)
            if match:
                found.append(match.group(1).split(" #")[0].strip())
    return found


def _resolve(tokens: list[str]) -> tuple[click.Command, list[str]]:
    command: click.Command = main
    for index, token in enumerate(tokens):
        if isinstance(command, click.Group) and token in command.commands:
            command = command.commands[token]
        else:
            return command, tokens[index:]
    return command, []


def test_every_camsort_command_line_in_the_readme_exists():
    lines = _camsort_lines()
    assert len(lines) > 10, "too few `camsort ...` lines found: the pattern is wrong"
    problems = []
    for line in lines:
        tokens = [token.strip("[]") for token in shlex.split(line, comments=False)]
        command, rest = _resolve(tokens)
        if command is main:
            problems.append(f"`camsort {line}`: no such command")
            continue
        options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        for token in rest:
            option = token.split("=")[0]
            if option.startswith("--") and option not in options | {"--help"}:
                problems.append(f"`camsort {line}`: {command.name} has no option {option}")
    assert not problems, "\n".join(problems)


def test_every_make_target_in_the_readme_exists():
    targets = set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), flags=re.MULTILINE))
    named = {target for text in _code() for target in re.findall(r"\bmake ([a-z][a-z-]*)", text)}
    assert {"demo", "test", "test-fast"} <= named, "the README's make targets were not found: pattern"
    assert not named - targets, f"README names make targets the Makefile lacks: {sorted(named - targets)}"


def _anchor(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces -> hyphens."""
    return re.sub(r"[^a-z0-9 _-]", "", title.strip().lower()).replace(" ", "-")


def test_the_table_of_contents_lists_every_section_in_order():
    sections = [line[3:] for line in README.splitlines() if line.startswith("## ") and line != "## Contents"]
    start = README.index("## Contents")
    toc = re.findall(r"^- \[(.+?)\]\(#([^)]+)\)$", README[start : README.index("\n## ", start + 1)], re.M)
    assert [anchor for _, anchor in toc] == [_anchor(section) for section in sections]
