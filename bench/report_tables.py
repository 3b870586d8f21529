"""A bench result's tables: markdown (results.md, the docs site) and rich (the terminal).

Pure: both renderings are built from bench.report's rows, so they cannot disagree.
"""

from __future__ import annotations

from typing import Any

from bench.report import (
    FP32,
    INT8,
    MISSING,
    NOT_APPLICABLE,
    PATH_HEADERS,
    PATHS,
    REFERENCE,
    Row,
    check_targets,
    comparison_rows,
    lookup,
    operator_rows,
    split_rows,
    stage_names,
)
from bench.stats import share


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return MISSING
    return f"{value:,.{digits}f}"


def fmt_ratio(value: float | None) -> str:
    return MISSING if value is None else f"{value:,.2f}"


def _cell(row: Row, path: str) -> str:
    return fmt(row.values[path], row.digits) if path in row.paths else NOT_APPLICABLE


def _ratio_cell(row: Row, value: float | None, path: str) -> str:
    return fmt_ratio(value) if {REFERENCE, path} <= set(row.paths) else NOT_APPLICABLE


def fmt_met(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[met]


SPLIT_PARTS = (
    ("S3 + DynamoDB calls", "S3 + DynamoDB calls"),
    ("decode", "decode"),
    ("inference", "inference"),
)


def time_split_lines(results: dict[str, Any]) -> list[str]:
    """One sentence per path: the per-frame total and the share of calls, decode and inference (p50s)."""
    lines = []
    for path in PATHS:
        stages = lookup(results, "paths", path, "stages") or {}
        total = lookup(stages, "all stages", "p50_ms")
        if not total:
            continue
        parts = []
        for key, name in SPLIT_PARTS:
            value = lookup(stages, key, "p50_ms")
            if value is not None:
                parts.append(f"{name} {value:.1f} ms ({share(value, total):.0f}%)")
        lines.append(
            f"{PATH_HEADERS[path]}: {total:.1f} ms per frame (p50 of the stage sum): " + ", ".join(parts)
        )
    return lines


COLD_PHASES = (
    ("started", "interpreter up (s after spawn)"),
    (
        "imported",
        "imports done; for (b)/(c) also the container state: clients, model from S3, session, warm-up",
    ),
    (
        "first_result",
        "first result written; for (a) this includes building the ResNet50 and the first predict",
    ),
)


def _cold_profile_lines(results: dict[str, Any]) -> list[str]:
    """Where each path's cold start goes: import cost, and the profile run's cProfile (for shares)."""
    lines = []
    profiled = False
    for path in PATHS:
        imports = lookup(results, "paths", path, "cold_start_s", "imports_s")
        if imports:
            listed = ", ".join(f"{module} {seconds:.2f} s" for module, seconds in imports.items())
            lines.append(
                f"- {PATH_HEADERS[path]}, imports in a fresh interpreter (`python -X importtime`): {listed}"
            )
    for path in PATHS:
        cold = lookup(results, "paths", path, "profile", "cold")
        if not cold or not cold.get("parts"):
            continue
        parts = "; ".join(f"{part['what']} {part['cumulative_s']:.2f} s" for part in cold["parts"])
        profiled = True
        lines.append(
            f"- {PATH_HEADERS[path]}, cold start under cProfile ({cold['total_s']:.2f} s in all): {parts}"
        )
    if profiled:
        lines += [
            "",
            "(cProfile slows Python-heavy parts down; read its figures as shares, the table above as times.)",
        ]
    if lines:
        lines.append("")
    return lines


def _cold_start_section(results: dict[str, Any]) -> list[str]:
    rows = []
    for key, meaning in COLD_PHASES:
        values = [lookup(results, "paths", p, "cold_start_s", "phases_median_s", key) for p in PATHS]
        if any(value is not None for value in values):
            rows.append([meaning, *(fmt(value, 2) for value in values)])
    if not rows:
        return []
    lines = ["#### Cold start, phase by phase (median of the fresh processes, seconds since spawn)", ""]
    lines += _markdown_table(
        ["mark", *(PATH_HEADERS[p] for p in PATHS)], rows, ["---", "---:", "---:", "---:"]
    )
    lines.append("")
    return lines


def _markdown_table(header: list[str], rows: list[list[str]], align: list[str]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _cpu_text(machine: dict[str, Any]) -> str:
    parts = [machine.get("cpu_model") or "", ", ".join(machine.get("cpu_flags") or [])]
    parts = [part for part in parts if part]
    return f" ({'; '.join(parts)})" if parts else ""


def split_table_rows(results: dict[str, Any]) -> list[list[str]]:
    """The split table's cells: path, batch, wall, compute, AWS round trips (moto) + handler work."""
    return [
        [PATH_HEADERS[row.path], row.batch, fmt(row.wall, 1), fmt(row.compute, 1), fmt(row.aws, 1)]
        for row in split_rows(results)
    ]


SPLIT_HEADER = [
    "path",
    "batch",
    "wall",
    "compute (decode + inference)",
    "AWS round trips (moto) + handler work",
]


def _split_section(results: dict[str, Any]) -> list[str]:
    rows = split_table_rows(results)
    if not rows:
        return []
    lines = ["#### Per frame: compute apart from the AWS round trips (means, ms)", ""]
    lines += _markdown_table(SPLIT_HEADER, rows, ["---", "---", "---:", "---:", "---:"])
    return lines + [
        "",
        "Wall is the invocations' time over the pass's frames; compute is the same frames decoded and "
        "predicted alone with the same model session (batch 10: one predict per ten frames); the rest is "
        "the calls to S3, DynamoDB and EventBridge (a moto server on this machine: its round trips, not "
        "AWS's) and the handler's own work around them.",
        "",
    ]


def render_markdown(results: dict[str, Any]) -> str:
    lines = _comparison_section(results) + _split_section(results) + _targets_section(results)
    lines += _stages_section(results)
    lines += _cold_start_section(results)
    lines += _cold_profile_lines(results)
    lines += _operator_section(results)
    lines += _draft_section(results.get("draft"))
    notes = results.get("notes", [])
    if notes:
        lines += ["#### Notes", "", *(f"- {note}" for note in notes), ""]
    return "\n".join(lines)


def _comparison_section(results: dict[str, Any]) -> list[str]:
    settings = results.get("settings", {})
    machine = results.get("machine", {})
    lines = [
        "### Bench results",
        "",
        f"{settings.get('frames', '?')} synthetic {settings.get('width', '?')}x{settings.get('height', '?')} "
        f"JPEG frames, one `make bench` run on {machine.get('cpus', '?')} CPUs"
        + _cpu_text(machine)
        + f", {results.get('created_at', '?')}; weights `{settings.get('weights', '?')}`; "
        f"S3, SQS and DynamoDB are a moto server on 127.0.0.1.",
        "",
    ]
    header = ["metric", *(PATH_HEADERS[p] for p in PATHS), "a/b", "a/c"]
    body = [
        [
            f"{row.name} ({row.unit})",
            *(_cell(row, p) for p in PATHS),
            _ratio_cell(row, row.a_over_b, FP32),
            _ratio_cell(row, row.a_over_c, INT8),
        ]
        for row in comparison_rows(results)
    ]
    lines += _markdown_table(header, body, ["---", "---:", "---:", "---:", "---:", "---:"])
    return lines + [
        "",
        "a/b and a/c are value(a) ÷ value(b or c): above 1 for times means ours is faster.",
        "",
    ]


def _targets_section(results: dict[str, Any]) -> list[str]:
    target_rows = [
        [
            check.name,
            PATH_HEADERS[check.path],
            fmt(check.value, 2),
            f"{check.op} {check.goal:g} {check.unit}",
            fmt_met(check.met),
        ]
        for check in check_targets(results)
    ]
    table = _markdown_table(
        ["target", "path", "measured", "goal", "result"], target_rows, ["---", "---", "---:", "---", "---"]
    )
    return ["#### Targets", "", *table, ""]


def _stages_section(results: dict[str, Any]) -> list[str]:
    names = stage_names(results)
    if not names:
        return []
    stage_rows = [
        [name, *(fmt(lookup(results, "paths", p, "stages", name, "p50_ms"), 2) for p in PATHS)]
        for name in names
    ]
    table = _markdown_table(
        ["stage", *(PATH_HEADERS[p] for p in PATHS)], stage_rows, ["---", "---:", "---:", "---:"]
    )
    return [
        "#### Where the time goes (warm, one frame at a time, p50 ms)",
        "",
        *table,
        "",
        *(f"- {line}" for line in time_split_lines(results)),
        *(f"- {line}" for line in familiarity_lines(results)),
        "",
    ]


def familiarity_lines(results: dict[str, Any]) -> list[str]:
    """Per path with a familiarity stage: the distance's cost per frame as a ratio to the model call."""
    lines = []
    for path in PATHS:
        cost = lookup(results, "paths", path, "stages", "familiarity", "p50_ms")
        model = lookup(results, "paths", path, "stages", "inference", "p50_ms")
        if cost is not None and model:
            lines.append(
                f"{PATH_HEADERS[path]}: the familiarity distance adds {cost:.3f} ms per frame, "
                f"{cost / model:.4f} x the model call ({model:.1f} ms; p50s, one frame at a time)"
            )
    return lines


def _draft_section(draft: dict[str, Any] | None) -> list[str]:
    if not draft:
        return []
    lines = ["#### JPEG draft decoding (`Image.draft`) vs full decode", ""]
    draft_rows = [
        [
            f"decode {q} (ms)",
            *(fmt(lookup(draft, "decode", mode, f"{q}_ms"), 2) for mode in ("draft", "full")),
        ]
        for q in ("p50", "p95")
    ]
    lines += _markdown_table(["", "draft", "full"], draft_rows, ["---", "---:", "---:"])
    lines.append("")
    for path in (FP32, INT8):
        agreement = lookup(draft, "agreement", path)
        if agreement:
            lines.append(
                f"- label agreement draft vs full, {PATH_HEADERS[path]}: "
                f"{100 * agreement['labels']:.1f}% of {agreement['n']} frames "
                f"(arg-max labels {100 * agreement['top_labels']:.1f}%, "
                f"max probability difference {agreement['max_abs_probability_diff']:.4f})"
            )
    lines.append("")
    return lines


def _operator_section(results: dict[str, Any]) -> list[str]:
    rows = operator_rows(results)
    if not rows:
        return []
    lines = ["#### Inside inference: onnxruntime operators (ms per frame, one frame per run)", ""]
    body = [[op, fmt(values[FP32], 2), fmt(values[INT8], 2)] for op, values in rows]
    lines += _markdown_table(
        ["operator", PATH_HEADERS[FP32], PATH_HEADERS[INT8]], body, ["---", "---:", "---:"]
    )
    lines.append("")
    return lines


def rich_table(results: dict[str, Any]):
    """The comparison table for the terminal."""
    from rich.table import Table

    table = Table(title="camsort bench: notebook way vs handler path", show_lines=False)
    table.add_column("metric")
    for path in PATHS:
        table.add_column(PATH_HEADERS[path], justify="right")
    table.add_column("a/b", justify="right")
    table.add_column("a/c", justify="right")
    for row in comparison_rows(results):
        table.add_row(
            f"{row.name} ({row.unit})",
            *(_cell(row, p) for p in PATHS),
            _ratio_cell(row, row.a_over_b, FP32),
            _ratio_cell(row, row.a_over_c, INT8),
        )
    return table


def rich_split_table(results: dict[str, Any]):
    """The split table for the terminal: the same cells as results.md's."""
    from rich.table import Table

    table = Table(title="per frame: compute apart from the AWS round trips (means, ms)")
    for number, column in enumerate(SPLIT_HEADER):
        table.add_column(column, justify="right" if number > 1 else "left")
    for cells in split_table_rows(results):
        table.add_row(*cells)
    return table


def rich_targets_table(results: dict[str, Any]):
    from rich.table import Table

    table = Table(title="targets (reported, never asserted)")
    for column in ("target", "path", "measured", "goal", "result"):
        table.add_column(column, justify="right" if column == "measured" else "left")
    for check in check_targets(results):
        style = {True: "green", False: "red", None: "yellow"}[check.met]
        table.add_row(
            check.name,
            PATH_HEADERS[check.path],
            fmt(check.value, 2),
            f"{check.op} {check.goal:g} {check.unit}",
            fmt_met(check.met).strip("*"),
            style=style,
        )
    return table
