"""What a bench result (the dict written to results.json) says: its comparison rows and targets.

Pure: reads the dict, returns rows (the comparison, the target checks, the stages, the
operators). bench.report_tables renders the same rows as markdown and as rich Tables, so the
terminal, results.md and docs site tables cannot disagree.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.stats import ratio

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


def lookup(result: dict[str, Any], *keys: str) -> Any:
    """Nested lookup that answers None instead of raising for a part that was not measured."""
    value: Any = result
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


NOT_APPLICABLE = "n/a"


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    keys: tuple[str, ...]  # where the value sits inside one path's result
    digits: int
    paths: tuple[str, ...] = PATHS  # the paths it means something for: "n/a" elsewhere, not "—"

    def value(self, path_result: dict[str, Any] | None) -> float | None:
        if path_result is None:
            return None
        return lookup(path_result, *self.keys)


METRICS = (
    Metric("warm latency p50, batch 1", "ms", ("warm_batch_1", "p50_ms"), 1),
    Metric("warm latency p95, batch 1", "ms", ("warm_batch_1", "p95_ms"), 1),
    Metric("warm latency p50 per frame, batch 10", "ms", ("warm_batch_10_per_frame", "p50_ms"), 1),
    # Compute alone (decode + inference, means per frame over the same passes): a/c compares like
    # with like. The AWS round trips (moto) are apart, in the split table (split_rows).
    Metric("compute per frame, batch 1 (decode + inference)", "ms", ("batch_1_split_ms", "compute"), 1),
    Metric("compute per frame, batch 10 (decode + inference)", "ms", ("batch_10_split_ms", "compute"), 1),
    Metric("throughput, batch 1", "frames/s", ("throughput_fps", "batch_1"), 1),
    Metric("throughput, batch 10", "frames/s", ("throughput_fps", "batch_10"), 1),
    Metric("cold start (median)", "s", ("cold_start_s", "median"), 2),
    Metric("peak RSS", "MiB", ("peak_rss_mib",), 0),
    Metric("training featurization, backbone at batch 16", "frames/s", ("featurization_fps",), 1),
    Metric(
        "training featurization, training.features.featurize end to end",
        "frames/s",
        ("featurization_end_to_end_fps",),
        1,
        paths=(FP32, INT8),  # the notebook way has no featurization pipeline of its own
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
    paths: tuple[str, ...] = PATHS


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
                paths=metric.paths,
            )
        )
    return rows


# --- per frame: compute apart from the AWS round trips ----------------------------------------

SPLITS = (("batch 1", "batch_1_split_ms"), ("batch 10", "batch_10_split_ms"))


@dataclass(frozen=True)
class SplitRow:
    path: str
    batch: str
    wall: float | None  # mean ms per frame, the invocations' wall time
    compute: float | None  # decode + inference alone, same frames, same model session
    aws: float | None  # the rest: the AWS round trips (to moto here) and the handler's own work


def split_rows(results: dict[str, Any]) -> list[SplitRow]:
    """One row per path and batch size that has its split (means per frame, ms)."""
    rows = []
    for path in PATHS:
        for batch, key in SPLITS:
            split = lookup(results, "paths", path, key)
            if split:
                rows.append(
                    SplitRow(path, batch, split.get("wall"), split.get("compute"), split.get("aws_and_rest"))
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
    return lambda results: lookup(results, "paths", path, *keys)


def _speedup(results: dict[str, Any]) -> float | None:
    return ratio(
        lookup(results, "paths", REFERENCE, "warm_batch_1", "p50_ms"),
        lookup(results, "paths", INT8, "warm_batch_1", "p50_ms"),
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


# --- what the tables show -------------------------------------------------------------------

# The handler's order of steps; the per-frame group sums follow the single stages.
STAGE_ORDER = ("dup_check", "get_object", "decode", "inference", "familiarity", "decide", "tag", "write")


def stage_names(results: dict[str, Any]) -> list[str]:
    """Every stage any path reported: the handler's steps in order, then the rest as first seen."""
    seen: list[str] = []
    for path in PATHS:
        for name in lookup(results, "paths", path, "stages") or {}:
            if name not in seen:
                seen.append(name)
    return [name for name in STAGE_ORDER if name in seen] + [name for name in seen if name not in STAGE_ORDER]


def operator_rows(results: dict[str, Any], top: int = 8) -> list[tuple[str, dict[str, float | None]]]:
    """The operator types that take the most inference time in either model (onnxruntime profile)."""
    per_path = {
        path: {
            row["op"]: row["ms_per_run"]
            for row in lookup(results, "paths", path, "profile", "onnxruntime_ops") or []
        }
        for path in (FP32, INT8)
    }
    names: list[str] = []
    for path in (INT8, FP32):
        for op in sorted(per_path[path], key=per_path[path].get, reverse=True)[:top]:
            if op not in names:
                names.append(op)
    return [(op, {path: per_path[path].get(op) for path in (FP32, INT8)}) for op in names]
