"""Turn a bench result (the dict written to results.json) into tables.

Pure: reads the dict, returns rows, a markdown string or a rich Table. The same rows feed
both renderings so the terminal and README tables cannot disagree.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.stats import ratio, share

# The three contenders, in table order.
REFERENCE = "reference"
FP32 = "fp32"
INT8 = "int8"
PATHS = (REFERENCE, FP32, INT8)
PATH_HEADERS = {
    REFERENCE: "(a) notebook",
    FP32: "(b) handler fp32",
    INT8: "(c) handler int8",
}
MISSING = "—"


def _get(result: dict[str, Any], *keys: str) -> Any:
    """Nested lookup that answers None instead of raising for a part that was not measured."""
    value: Any = result
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    keys: tuple[str, ...]  # where the value sits inside one path's result
    digits: int

    def value(self, path_result: dict[str, Any] | None) -> float | None:
        if path_result is None:
            return None
        return _get(path_result, *self.keys)


METRICS = (
    Metric("warm latency p50, batch 1", "ms", ("warm_batch_1", "p50_ms"), 1),
    Metric("warm latency p95, batch 1", "ms", ("warm_batch_1", "p95_ms"), 1),
    Metric("warm latency p50 per frame, batch 10", "ms", ("warm_batch_10_per_frame", "p50_ms"), 1),
    Metric("throughput, batch 1", "frames/s", ("throughput_fps", "batch_1"), 1),
    Metric("throughput, batch 10", "frames/s", ("throughput_fps", "batch_10"), 1),
    Metric("cold start (median)", "s", ("cold_start_s", "median"), 2),
    Metric("peak RSS", "MiB", ("peak_rss_mib",), 0),
    Metric("training featurization, backbone at batch 16", "frames/s", ("featurization_fps",), 1),
    Metric(
        "training featurization, training.featurize end to end",
        "frames/s",
        ("featurization_end_to_end_fps",),
        1,
    ),
    Metric("Lambda package, unzipped", "MiB", ("package_mib",), 1),
)


@dataclass(frozen=True)
class Row:
    name: str
    unit: str
    values: dict[str, float | None]  # path -> value
    a_over_b: float | None
    a_over_c: float | None
    digits: int


def comparison_rows(results: dict[str, Any]) -> list[Row]:
    """One row per metric; the ratios are literally value(a) / value(b) and value(a) / value(c)."""
    paths = results.get("paths", {})
    rows = []
    for metric in METRICS:
        values = {path: metric.value(paths.get(path)) for path in PATHS}
        rows.append(
            Row(
                name=metric.name,
                unit=metric.unit,
                values=values,
                a_over_b=ratio(values[REFERENCE], values[FP32]),
                a_over_c=ratio(values[REFERENCE], values[INT8]),
                digits=metric.digits,
            )
        )
    return rows


# --- targets ---------------------------------------------------------------------------------

_OPS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, ">=": operator.ge}


@dataclass(frozen=True)
class Target:
    name: str
    path: str
    op: str  # "<=" | ">="
    goal: float
    unit: str
    measure: Callable[[dict[str, Any]], float | None]


@dataclass(frozen=True)
class TargetCheck:
    name: str
    path: str
    value: float | None
    op: str
    goal: float
    unit: str
    met: bool | None  # None when the figure was not measured


def _path_value(path: str, *keys: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda results: _get(results, "paths", path, *keys)


def _speedup(results: dict[str, Any]) -> float | None:
    return ratio(
        _get(results, "paths", REFERENCE, "warm_batch_1", "p50_ms"),
        _get(results, "paths", INT8, "warm_batch_1", "p50_ms"),
    )


# The targets, verbatim. Reported against, never asserted in tests.
TARGETS = (
    Target(
        "warm p50 per 720p frame, decode included",
        INT8,
        "<=",
        15.0,
        "ms",
        _path_value(INT8, "warm_batch_1", "p50_ms"),
    ),
    Target("speed-up over (a), warm p50 (a/c)", INT8, ">=", 15.0, "x", _speedup),
    Target("cold start", FP32, "<=", 1.0, "s", _path_value(FP32, "cold_start_s", "median")),
    Target("cold start", INT8, "<=", 1.0, "s", _path_value(INT8, "cold_start_s", "median")),
    Target("training featurization", FP32, ">=", 100.0, "frames/s", _path_value(FP32, "featurization_fps")),
    Target("training featurization", INT8, ">=", 100.0, "frames/s", _path_value(INT8, "featurization_fps")),
    Target("Lambda package, unzipped", INT8, "<=", 150.0, "MiB", _path_value(INT8, "package_mib")),
)


def check_targets(results: dict[str, Any], targets: tuple[Target, ...] = TARGETS) -> list[TargetCheck]:
    checks = []
    for target in targets:
        value = target.measure(results)
        met = None if value is None else _OPS[target.op](value, target.goal)
        checks.append(TargetCheck(target.name, target.path, value, target.op, target.goal, target.unit, met))
    return checks


# --- formatting ------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return MISSING
    return f"{value:,.{digits}f}"


def fmt_ratio(value: float | None) -> str:
    return MISSING if value is None else f"{value:,.2f}"


def fmt_met(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[met]


# The handler's order of steps; the per-frame group sums follow the single stages.
STAGE_ORDER = ("dup_check", "get_object", "decode", "inference", "decide", "tag", "write")


def stage_names(results: dict[str, Any]) -> list[str]:
    """Every stage any path reported: the handler's steps in order, then the rest as first seen."""
    seen: list[str] = []
    for path in PATHS:
        for name in _get(results, "paths", path, "stages") or {}:
            if name not in seen:
                seen.append(name)
    return [name for name in STAGE_ORDER if name in seen] + [name for name in seen if name not in STAGE_ORDER]


SPLIT_PARTS = (
    ("S3 + DynamoDB calls", "S3 + DynamoDB calls"),
    ("decode", "decode"),
    ("inference", "inference"),
)


def time_split_lines(results: dict[str, Any]) -> list[str]:
    """One sentence per path: the per-frame total and the share of calls, decode and inference (p50s)."""
    lines = []
    for path in PATHS:
        stages = _get(results, "paths", path, "stages") or {}
        total = _get(stages, "all stages", "p50_ms")
        if not total:
            continue
        parts = []
        for key, name in SPLIT_PARTS:
            value = _get(stages, key, "p50_ms")
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
        imports = _get(results, "paths", path, "cold_start_s", "imports_s")
        if imports:
            listed = ", ".join(f"{module} {seconds:.2f} s" for module, seconds in imports.items())
            lines.append(
                f"- {PATH_HEADERS[path]}, imports in a fresh interpreter (`python -X importtime`): {listed}"
            )
    for path in PATHS:
        cold = _get(results, "paths", path, "profile", "cold")
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
        values = [_get(results, "paths", p, "cold_start_s", "phases_median_s", key) for p in PATHS]
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


def render_markdown(results: dict[str, Any]) -> str:
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
            *(fmt(row.values[p], row.digits) for p in PATHS),
            fmt_ratio(row.a_over_b),
            fmt_ratio(row.a_over_c),
        ]
        for row in comparison_rows(results)
    ]
    lines += _markdown_table(header, body, ["---", "---:", "---:", "---:", "---:", "---:"])
    lines += ["", "a/b and a/c are value(a) ÷ value(b or c): above 1 for times means ours is faster.", ""]

    lines += ["#### Targets", ""]
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
    lines += _markdown_table(
        ["target", "path", "measured", "goal", "result"], target_rows, ["---", "---", "---:", "---", "---"]
    )
    lines.append("")

    names = stage_names(results)
    if names:
        lines += ["#### Where the time goes (warm, one frame at a time, p50 ms)", ""]
        stage_rows = [
            [name, *(fmt(_get(results, "paths", p, "stages", name, "p50_ms"), 2) for p in PATHS)]
            for name in names
        ]
        lines += _markdown_table(
            ["stage", *(PATH_HEADERS[p] for p in PATHS)], stage_rows, ["---", "---:", "---:", "---:"]
        )
        lines.append("")
        lines += [f"- {line}" for line in time_split_lines(results)]
        lines.append("")

    lines += _cold_start_section(results)
    lines += _cold_profile_lines(results)
    lines += _operator_section(results)

    draft = results.get("draft")
    if draft:
        lines += ["#### JPEG draft decoding (`Image.draft`) vs full decode", ""]
        draft_rows = [
            [
                "decode p50 (ms)",
                fmt(_get(draft, "decode", "draft", "p50_ms"), 2),
                fmt(_get(draft, "decode", "full", "p50_ms"), 2),
            ],
            [
                "decode p95 (ms)",
                fmt(_get(draft, "decode", "draft", "p95_ms"), 2),
                fmt(_get(draft, "decode", "full", "p95_ms"), 2),
            ],
        ]
        lines += _markdown_table(["", "draft", "full"], draft_rows, ["---", "---:", "---:"])
        lines.append("")
        for path in (FP32, INT8):
            agreement = _get(draft, "agreement", path)
            if agreement:
                lines.append(
                    f"- label agreement draft vs full, {PATH_HEADERS[path]}: "
                    f"{100 * agreement['labels']:.1f}% of {agreement['n']} frames "
                    f"(arg-max labels {100 * agreement['top_labels']:.1f}%, "
                    f"max probability difference {agreement['max_abs_probability_diff']:.4f})"
                )
        lines.append("")

    notes = results.get("notes", [])
    if notes:
        lines += ["#### Notes", ""]
        lines += [f"- {note}" for note in notes]
        lines.append("")
    return "\n".join(lines)


def operator_rows(results: dict[str, Any], top: int = 8) -> list[tuple[str, dict[str, float | None]]]:
    """The operator types that take the most inference time in either model (onnxruntime profile)."""
    per_path = {
        path: {
            row["op"]: row["ms_per_run"]
            for row in _get(results, "paths", path, "profile", "onnxruntime_ops") or []
        }
        for path in (FP32, INT8)
    }
    names: list[str] = []
    for path in (INT8, FP32):
        for op in sorted(per_path[path], key=per_path[path].get, reverse=True)[:top]:
            if op not in names:
                names.append(op)
    return [(op, {path: per_path[path].get(op) for path in (FP32, INT8)}) for op in names]


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
            *(fmt(row.values[p], row.digits) for p in PATHS),
            fmt_ratio(row.a_over_b),
            fmt_ratio(row.a_over_c),
        )
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
