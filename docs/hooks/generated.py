"""MkDocs hook: the figures and the command reference on the pages are generated, never retyped.

A page asks for generated content in two ways:

* a block marker on a line of its own, ``<!-- generated: NAME -->``, replaced by a whole
  section (the bench tables, the command reference; see ``BLOCKS``);
* an inline figure, ``[[SOURCE:dotted.path|format]]``, replaced by one value of a source
  (``bench`` = bench/results.json, ``perf`` = bench/perf.json, ``scale`` = the archive-at-scale
  figures computed from bench/results.json, ``demo`` = bench/demo-memory.json), formatted with ``format`` (a ``format()`` spec;
  a list index is a number in the path).

An unknown marker, source or path stops the build with the page and the token named, so a
figure renamed in the bench can never leave a stale or empty number on a page. The renderers
are the project's own (the ones that write bench/results.md), so the page and the file agree.
"""

from __future__ import annotations

import html
import json
import re
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the hook runs from mkdocs, which does not put the repo on the path
    sys.path.insert(0, str(REPO))

BENCH_RESULTS = REPO / "bench" / "results.json"
BENCH_PERF = REPO / "bench" / "perf.json"
DEMO_MEMORY = REPO / "bench" / "demo-memory.json"
BLOCK = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)
FIGURE = re.compile(r"\[\[([a-z]+):([A-Za-z0-9_.+ ()-]+?)(?:\|([^\]]*))?\]\]")


class GeneratedContentError(Exception):
    """A page asks for generated content that does not exist (names the page and the token)."""


@cache
def _results() -> dict[str, Any]:
    return json.loads(BENCH_RESULTS.read_text())


@cache
def _perf() -> dict[str, Any]:
    return json.loads(BENCH_PERF.read_text())


@cache
def _scale() -> dict[str, Any]:
    from infra.ops.scale import figures

    return figures()


@cache
def _demo() -> dict[str, Any]:
    return json.loads(DEMO_MEMORY.read_text())


SOURCES: dict[str, Callable[[], dict[str, Any]]] = {
    "bench": _results,
    "perf": _perf,
    "scale": _scale,
    "demo": _demo,
}


def _body(section: str) -> str:
    """A rendered section without its own title: the page gives it a heading of its own."""
    lines = section.strip().splitlines()
    return "\n".join(lines[1:] if lines and lines[0].startswith("#") else lines)


def _bench_results() -> str:
    from bench.report_tables import render_markdown

    return _body(render_markdown(_results()))


def _bench_shadow() -> str:
    from bench.shadow import shadow_markdown

    return _body(shadow_markdown(_results()))


def _bench_perf() -> str:
    from bench.perf.markdown import render_markdown

    return _body(render_markdown(_perf()))


def _decode_memory() -> str:
    import json

    from bench.decode_memory import decode_memory_markdown

    figures = json.loads((REPO / "bench" / "decode-memory.json").read_text())
    return "\n".join(
        line
        for line in _body(decode_memory_markdown(figures).split("\n", 2)[2]).splitlines()
        if not line.startswith("<!--")
    )


def _demo_memory() -> str:
    from bench.demo_memory import demo_memory_markdown

    return demo_memory_markdown(_demo())


def _scale_table() -> str:
    figures = _scale()
    day, month = figures["usd_per_day"], figures["usd_per_month"]
    rows = [
        ("Lambda (GB-s + requests)", day["lambda_usd"], month["lambda_usd"]),
        ("SQS (S3's send + receive/delete per batch)", day["sqs_usd"], month["sqs_usd"]),
        (
            "DynamoDB writes (2 WRU/frame) + duplicate look-ups (1 RRU)",
            day["dynamodb_usd"],
            month["dynamodb_usd"],
        ),
        ("S3 GetObject + GetObjectTagging", day["s3_get_usd"], month["s3_get_usd"]),
        ("S3 PutObjectTagging (the tags)", day["s3_tagging_usd"], month["s3_tagging_usd"]),
        ("**total**", sum(day.values()), sum(month.values())),
    ]
    lines = ["| item | per day | per month |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | ${per_day:,.2f} | ${per_month:,.0f} |" for name, per_day, per_month in rows]
    return "\n".join(lines)


def _commands() -> str:
    from camsort.cli import main

    return "\n".join(_command_sections(main, "camsort"))


def _command_sections(group, prefix: str) -> list[str]:
    import click

    lines: list[str] = []
    for name in sorted(group.commands):
        command = group.commands[name]
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            lines += _command_sections(command, path)
            continue
        ctx = click.Context(command, info_name=path)
        usage = " ".join(command.collect_usage_pieces(ctx))
        lines += [f"## `{path}`", "", _cell((command.help or "").split("\n\n")[0]), ""]
        lines += ["```", f"{path} {usage}", "```", ""]
        options = [param for param in command.params if isinstance(param, click.Option) and not param.hidden]
        if options:
            lines += ["| option | default | what it does |", "| --- | --- | --- |"]
            for option in options:
                flags = ", ".join(f"`{flag}`" for flag in (*option.opts, *option.secondary_opts))
                lines.append(f"| {flags} | {_default(option)} | {_cell(option.help or '')} |")
            lines.append("")
    return lines


def _default(option) -> str:
    if option.is_flag and not option.secondary_opts:
        return "off"
    default = option.default
    if callable(default) or default is None or default == ():
        return ""
    if isinstance(default, bool):
        return option.opts[0] if default else (option.secondary_opts or ["off"])[0]
    return f"`{default}`"


def _cell(text: str) -> str:
    """Help text as one table cell: `<stage>` must show, not become an HTML tag."""
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")


def _camera_health() -> str:
    from bench.perf.markdown import health_section

    return "\n\n".join(health_section(_perf()["camera_health"])[1:])  # the page has its own title


BLOCKS: dict[str, Callable[[], str]] = {
    "camera-health": _camera_health,
    "bench-results": _bench_results,
    "bench-shadow": _bench_shadow,
    "bench-perf": _bench_perf,
    "decode-memory": _decode_memory,
    "demo-memory": _demo_memory,
    "scale-table": _scale_table,
    "commands": _commands,
}


def figure(source: str, path: str, spec: str = "") -> str:
    """One value of a source, formatted: ``figure("bench", "paths.int8.warm_batch_1.p50_ms", ".1f")``."""
    if source not in SOURCES:
        raise GeneratedContentError(f"no figure source {source!r} (known: {', '.join(SOURCES)})")
    value: Any = SOURCES[source]()
    for part in path.split("."):
        try:
            value = value[int(part)] if isinstance(value, list) else value[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise GeneratedContentError(f"{source} has no figure {path!r} (missing at {part!r})") from None
    return format(value, spec)


def render(markdown: str, page_name: str = "<page>") -> str:
    """The page with every block marker and inline figure replaced by its generated content."""

    def block(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in BLOCKS:
            raise GeneratedContentError(
                f"{page_name}: unknown generated block {name!r} (known: {', '.join(BLOCKS)})"
            )
        return BLOCKS[name]().strip()

    def inline(match: re.Match[str]) -> str:
        try:
            return figure(match.group(1), match.group(2), match.group(3) or "")
        except GeneratedContentError as error:
            raise GeneratedContentError(f"{page_name}: {match.group(0)}: {error}") from None

    return FIGURE.sub(inline, BLOCK.sub(block, markdown))


def on_page_markdown(markdown: str, page, config, files) -> str:  # MkDocs' hook signature
    from mkdocs.exceptions import PluginError

    try:
        return render(markdown, page.file.src_uri)
    except GeneratedContentError as error:
        raise PluginError(str(error)) from error
