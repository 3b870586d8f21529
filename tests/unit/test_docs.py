"""The README and the documentation site cannot drift: what a page names exists, with the values it gives.

For the README and every page under docs/ (the sources, and the pages as the site's hook renders them):

* every ``CAMSORT_*`` variable named is defined (``functions/env.py``, or the tests' own);
* the configuration page's variable table lists every function variable with the default
  ``load_settings`` actually gives, and its deploy-parameter table every ``serverless.yml`` param
  with its default;
* every ``camsort ...`` command line shown resolves to a command, and every ``--option`` on it
  is an option of that command (the click parsers are the reference);
* every ``make <target>`` shown is a target of the Makefile;
* every repository path (``infra/topology.py``) and module name (``functions.handler.lambda_handler``)
  named exists;
* every link between pages resolves, anchors included; every page is in mkdocs.yml's nav;
* the generated figures are the files' figures, and no marker is left unrendered;
* no page names a tracker issue; the README stays short and keeps its two commands up top.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import sys
from functools import cache
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from markdown.extensions.toc import slugify

from camsort.cli import main
from functions import env
from functions.errors import ConfigurationError
from functions.settings import load_settings
from tests.fixtures.browser import REQUIRE_BROWSER
from tests.fixtures.deploy import PYTHON312_ENV

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
README = REPO / "README.md"
PAGES = [README, *sorted(DOCS.rglob("*.md"))]
CONFIGURATION = DOCS / "reference" / "configuration.md"
MIB = 1024 * 1024
# The two variables without defaults, set so that load_settings gives every other default.
REQUIRED = {
    env.MODEL_URI: "s3://models/camsort/",
    env.RESULTS_TABLE: "camsort-results-docs",
    env.MODEL_SHA256: "d" * 64,
}
# Folders a page may name paths in; paths under them that builds write (not in the repository).
SOURCE_ROOTS = ("functions", "training", "export", "infra", "bench", "camsort", "tests", "docs")
WRITTEN_BY_BUILDS = ("bench/work/",)


@cache
def _hook():
    spec = importlib.util.spec_from_file_location("docs_generated_hook", DOCS / "hooks" / "generated.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@cache
def _text(page: Path) -> str:
    return page.read_text()


@cache
def _rendered(page: Path) -> str:
    return _hook().render(_text(page), str(page.relative_to(REPO)))


def _name(page: Path) -> str:
    return str(page.relative_to(REPO))


def _code(text: str) -> list[str]:
    """Inline code spans (line breaks inside a span become spaces) and code-block lines."""
    blocks = re.findall(r"^\s*```[^\n]*\n(.*?)^\s*```", text, flags=re.MULTILINE | re.DOTALL)
    # A shell line continued with a trailing backslash is one command.
    lines = [line for block in blocks for line in re.sub(r"\\\n\s*", " ", block).splitlines()]
    prose = re.sub(r"^\s*```[^\n]*\n.*?^\s*```", "", text, flags=re.MULTILINE | re.DOTALL)
    spans = [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", prose)]
    return spans + lines


def _all_code() -> list[tuple[str, str]]:
    return [(_name(page), code) for page in PAGES for code in _code(_text(page))]


def _env_names() -> dict[str, str]:
    """CAMSORT_* value -> the constant's name in functions/env.py."""
    return {
        value: name
        for name, value in vars(env).items()
        if name.isupper() and isinstance(value, str) and value.startswith("CAMSORT_")
    }


def test_every_variable_a_page_names_exists():
    named = {
        (_name(page), var) for page in PAGES for var in re.findall(r"\bCAMSORT_[A-Z0-9_]+\b", _text(page))
    }
    assert len(named) > 20, "the pages name almost no CAMSORT_* variable: the pattern is wrong"
    unknown = sorted(
        (page, var)
        for page, var in named
        if var not in _env_names() and var not in (PYTHON312_ENV, REQUIRE_BROWSER)
    )
    assert not unknown, f"pages name variables nothing defines: {unknown}"


def _table_rows(text: str, heading: str) -> list[list[str]]:
    """The cells of the first table after ``heading`` (escaped pipes kept as pipes)."""
    lines = text[text.index(heading) :].splitlines()[1:]
    start = next(index for index, line in enumerate(lines) if line.startswith("|"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
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
    if isinstance(value, int | float):
        return value
    return value


def _check_variable(variable: str, cell: str, attribute: str) -> str | None:
    """What is wrong with one row of the variable table (None: nothing)."""
    from functions.settings import load_audit_settings

    audit_required = {env.FRAMES_BUCKET: "b", env.RESULTS_TABLE: "t", env.DEAD_LETTER_QUEUE_URL: "q"}
    for required, loader in (("(required by the audit function)", load_audit_settings), ("(required)", None)):
        if cell == required:
            environ = audit_required if loader else REQUIRED
            with pytest.raises(ConfigurationError, match=variable):
                (loader or load_settings)(
                    {name: value for name, value in environ.items() if name != variable}
                )
            return None
    defaults = load_settings(REQUIRED)
    source = defaults if hasattr(defaults, attribute) else load_audit_settings(audit_required)
    actual, documented = _setting(getattr(source, attribute)), _documented_value(cell)
    if documented is None:
        return None if actual is None else f"{variable}: the page says {cell!r}, the default is {actual!r}"
    if isinstance(documented, str) and not isinstance(actual, str):
        actual = str(actual)  # a number or flag written as code: `0.05`, `20`, `true`
    return (
        None
        if actual == documented
        else f"{variable}: the page says {documented!r}, the default is {actual!r}"
    )


def test_the_configuration_table_gives_the_real_defaults():
    rows = _table_rows(_text(CONFIGURATION), "## Environment variables")
    names = _env_names()
    documented = {re.fullmatch(r"`(CAMSORT_[A-Z0-9_]+)`", row[0]).group(1): row[1] for row in rows}
    assert set(documented) == {name for name in names if name != env.CACHE_DIR}, (
        "the configuration table and functions/env.py's function variables differ"
    )
    problems = [_check_variable(var, cell, names[var].lower()) for var, cell in documented.items()]
    assert not [problem for problem in problems if problem], "\n".join(p for p in problems if p)


def test_the_deploy_parameter_table_lists_every_serverless_param_with_its_default():
    params = yaml.safe_load((REPO / "serverless.yml").read_text())["params"]
    rows = _table_rows(_text(CONFIGURATION), "## Deploy parameters")
    documented: dict[str, str] = {}
    for names_cell, default_cell, _meaning in rows:
        names = re.findall(r"`(\w+)`", names_cell)
        defaults = [part.strip() for part in default_cell.split(" / ")]
        documented |= {
            name: defaults[i] if len(defaults) == len(names) else "" for i, name in enumerate(names)
        }
    assert set(documented) == set(params["default"]) | {"modelSha256"}
    for name, value in params["default"].items():
        cell = re.sub(r" \(.*\)$", "", documented[name])  # "5 (`prod`: 20, `dev`: 2)" -> "5"
        if isinstance(value, int) and not isinstance(value, bool) and re.fullmatch(r"[\d,]+", cell):
            assert int(cell.replace(",", "")) == value, (
                f"{name}: the page says {cell}, serverless.yml {value}"
            )


def _camsort_lines() -> list[tuple[str, str]]:
    found = []
    for page, text in _all_code():
        for part in re.split(r"\s(?:\||&&|;)\s", text):
            match = re.match(r"^\s*(?:\$ )?(?:[A-Z_]+=\S+ )*(?:\S*/)?camsort (.+)$", part)
            if match:
                found.append((page, match.group(1).split(" #")[0].strip()))
    return found


def _resolve(tokens: list[str]) -> tuple[click.Command, list[str]]:
    command: click.Command = main
    for index, token in enumerate(tokens):
        if isinstance(command, click.Group) and token in command.commands:
            command = command.commands[token]
        else:
            return command, tokens[index:]
    return command, []


def test_every_camsort_command_line_shown_exists_with_its_options():
    lines = _camsort_lines()
    assert len(lines) > 40, "too few `camsort ...` lines found: the pattern is wrong"
    problems = []
    for page, line in lines:
        tokens = [token.strip("[]") for token in shlex.split(line, comments=False)]
        command, rest = _resolve(tokens)
        if command is main and not tokens[0].startswith("-"):
            problems.append(f"{page}: `camsort {line}`: no such command")
            continue
        options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        for token in rest:
            option = token.split("=")[0]
            if option.startswith("--") and option not in options | {"--help"}:
                problems.append(f"{page}: `camsort {line}`: {command.name} has no option {option}")
    assert not problems, "\n".join(problems)


def test_every_make_target_shown_exists():
    targets = set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), flags=re.MULTILINE))
    named = {
        (page, target) for page, text in _all_code() for target in re.findall(r"\bmake ([a-z][a-z-]*)", text)
    }
    assert {"demo", "test", "test-fast", "docs"} <= {target for _, target in named}, (
        "pattern found no targets"
    )
    missing = sorted((page, target) for page, target in named if target not in targets)
    assert not missing, f"pages name make targets the Makefile lacks: {missing}"


def _repo_paths(text: str) -> set[str]:
    candidates = set(re.findall(r"`([^`\s]+)`", text)) | set(re.findall(r"\]\(([^)#\s]+)", text))
    return {
        path.rstrip(".,:;")
        for path in candidates
        if path.split("/")[0] in SOURCE_ROOTS and "/" in path and not re.search(r"[<>*{}$]|\.\.\.", path)
    }


def test_every_repository_path_a_page_names_exists():
    missing = []
    for page in PAGES:
        for path in sorted(_repo_paths(_text(page))):
            if not path.startswith(WRITTEN_BY_BUILDS) and not (REPO / path.split(":")[0]).exists():
                missing.append(f"{_name(page)}: {path}")
    assert len([p for page in PAGES for p in _repo_paths(_text(page))]) > 50, "pattern found too few paths"
    assert not missing, "pages name paths that do not exist:\n" + "\n".join(missing)


def _module_name_exists(dotted: str) -> bool:
    """``functions.handler.lambda_handler``: a module file, then names defined in it (no import)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        base = REPO.joinpath(*parts[:cut])
        source = base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"
        if source.exists():
            rest = parts[cut:]
            if not rest:
                return True
            # The first attribute is defined at the top of the module (function, class, constant)
            # or imported into it; deeper ones (a method) are only looked for by name.
            return all(
                re.search(rf"^(?:\s*(?:async\s+)?def |\s*class |){re.escape(name)}\b", _read(source), re.M)
                or re.search(rf"\bimport .*\b{re.escape(name)}\b", _read(source))
                for name in rest
            )
    return False


@cache
def _read(path: Path) -> str:
    return path.read_text()


def test_every_module_name_a_page_names_exists():
    # Not a name that goes on (`camsort.state-changed`, the bus `camsort.events.<stage>`).
    pattern = r"\b((?:functions|training|export|infra|bench|camsort)(?:\.[A-Za-z_][A-Za-z0-9_]*)+)(?![-<\w]|\.[<\w])"
    named = {
        (_name(page), name)
        for page in PAGES
        for code in _code(_text(page))
        for name in re.findall(pattern, code)
    }
    assert len(named) > 30, "pattern found too few module names"
    from infra.deploy.topology import EVENT_DETAIL_TYPE, StackNames

    not_modules = {StackNames().event_bus, EVENT_DETAIL_TYPE}  # names on the bus that look dotted
    missing = sorted(
        (page, name) for page, name in named if name not in not_modules and not _module_name_exists(name)
    )
    assert not missing, f"pages name modules or functions that do not exist: {missing}"


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"^\s*```.*?^\s*```", "", _rendered(page), flags=re.MULTILINE | re.DOTALL)
    anchors = set()
    for title in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE):
        plain = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title).replace("`", "").replace("*", "")
        anchors.add(slugify(plain, "-"))
    return anchors


def test_every_link_between_pages_resolves_with_its_anchor():
    problems = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", _text(page)):
            if re.match(r"[a-z]+:", target):
                continue  # https://, mailto:
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists():
                problems.append(f"{_name(page)}: {target}: no such file")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                problems.append(f"{_name(page)}: {target}: {linked.name} has no heading #{anchor}")
            elif page == README and path and not path.startswith("docs/"):
                problems.append(f"README.md: {target}: the README links only to documentation pages")
    assert not problems, "\n".join(problems)


def test_every_page_is_in_the_site_navigation():
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    listed = set(re.findall(r"[\w/-]+\.md", json.dumps(config["nav"])))
    pages = {str(page.relative_to(DOCS)) for page in PAGES if page != README}
    assert listed == pages, (
        f"not in mkdocs.yml's nav: {sorted(pages - listed)}; missing: {sorted(listed - pages)}"
    )


def test_no_page_names_an_issue_number():
    pattern = re.compile(r"\bissues?[ -]?#?\d+|(?<![\w/])#\d+\b", re.IGNORECASE)
    named = [(_name(page), match) for page in PAGES for match in pattern.findall(_rendered(page))]
    assert not named, f"pages name tracker issues: {named}"


def test_every_generated_marker_is_rendered():
    for page in PAGES:
        rendered = _rendered(page)
        assert not _hook().BLOCK.search(rendered) and not _hook().FIGURE.search(rendered), _name(page)


def test_no_placeholder_in_prose_is_swallowed_as_an_html_tag():
    """`camsort-frames-<stage>` outside a code span renders as `camsort-frames-`: the reader loses it."""
    hidden = []
    for page in PAGES:
        prose = re.sub(r"^\s*```.*?^\s*```", "", _rendered(page), flags=re.MULTILINE | re.DOTALL)
        prose = re.sub(r"`[^`]*`|<!--.*?-->", "", prose)
        hidden += [f"{_name(page)}: {tag}" for tag in re.findall(r"<[A-Za-z][^>\n]{0,40}>", prose)]
    assert not hidden, f"write these in a code span, or escape them: {hidden}"


def test_the_performance_page_shows_the_bench_files_numbers():
    results = json.loads((REPO / "bench" / "results.json").read_text())
    perf = json.loads((REPO / "bench" / "perf.json").read_text())
    page = _rendered(DOCS / "performance.md")
    int8, reference = results["paths"]["int8"], results["paths"]["reference"]
    # The comparison table's rows, as bench/report_tables.py writes them into results.md.
    p50 = f"| warm latency p50, batch 1 (ms) | {reference['warm_batch_1']['p50_ms']:,.1f} |"
    assert p50 in page
    assert f"| {int8['warm_batch_1']['p50_ms']:,.1f} |" in page
    assert f"| {int8['peak_rss_mib']:,.0f} |" in page
    assert f"{perf['handler_comparison']['a_over_c']}" in page  # the perf targets table
    assert f"{int8['stages']['S3 + DynamoDB calls']['p50_ms']:.0f} ms of its" in page
    assert results["created_at"] in page and perf["created_at"] in page


def test_the_archive_page_prices_what_infra_scale_computes():
    from infra.ops.scale import figures

    scale = figures()
    page = _rendered(DOCS / "archive.md")
    assert f"${scale['usd_per_month']['s3_tagging_usd']:,.0f} |" in page
    assert f"{scale['backfill']['fps']:.0f} frames/s" in page
    assert f"{scale['per_frame_ms']['single_frame']:.1f} ms for one frame" in page


def test_the_readme_is_short_and_opens_with_the_two_commands():
    lines = _text(README).splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines: move detail into docs/"
    opening = "\n".join(lines[:10])
    assert "make demo" in opening and "make test" in opening


@pytest.mark.parametrize("page", [README, DOCS / "getting-started.md"], ids=_name)
def test_the_tour_a_page_shows_is_the_tour_the_demo_prints(page):
    """One list (infra/demo/tour.py): the demo prints it, this page shows it, tests/e2e/test_tour.py runs it."""
    from infra.demo.tour import tour_commands
    from tests.fixtures.readme import tour_commands as shown

    demo, tour = shown(_text(page))
    assert demo is not None, f"{_name(page)}: no `camsort demo ... --keep-running` line in its tour section"
    assert tour == tour_commands(shadow=False), (
        f"{_name(page)}'s tour after `{demo}` differs from infra/demo/tour.py (what the demo prints)"
    )
