"""The perf run's markdown: the "Performance" section of results.md, between its markers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

START_MARK, END_MARK = "<!-- perf:start -->", "<!-- perf:end -->"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if cell is None else str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(results: dict[str, Any], headline_only: bool = False) -> str:
    headline = _targets_table(results["targets"])
    if headline_only:
        return headline
    parts = [*_machine_section(results, headline), *_gemm_section(results["gemm"])]
    for precision, path in results["paths"].items():
        parts += _path_section(precision, path)
    if "int8_guard" in results:
        parts += _int8_guard_section(results["int8_guard"])
    for precision, priced in results.get("pricing", {}).items():
        parts += _pricing_section(precision, priced)
    return "\n\n".join(parts) + "\n"


def _targets_table(targets: list[dict[str, Any]]) -> str:
    met = {True: "yes", False: "**no**", None: "not measured"}
    return _table(
        ["target", "measured", "limit", "met"],
        [[t["target"], t["value"], t["limit"], met[t["met"]]] for t in targets],
    )


def _machine_section(results: dict[str, Any], headline: str) -> list[str]:
    machine = results["machine"]
    load = f"load average {machine.get('load_average_at_start')} at start, {machine.get('load_average_at_end')} at end"
    return [
        "## Performance",
        f"{results['created_at']}, {machine['cpu_model']} ({', '.join(machine['cpu_flags'])}), "
        f"{results['threads']} threads, onnxruntime {machine['onnxruntime']}; {load}. "
        "A shared machine: absolute figures are from a loaded CPU; compare ratios within this run.",
        "### Targets",
        headline,
    ]


def _gemm_section(gemm: dict[str, Any]) -> list[str]:
    rows = [[k, gemm["threads"], v["gflops"], v["median_gflops"]] for k, v in gemm["rates"].items()]
    rows += [[k, 1, v["gflops"], v["median_gflops"]] for k, v in gemm["rates_1_thread"].items()]
    return [
        "### GEMM limit (onnxruntime, best of 5; median beside it)",
        _table(["kernel", "threads", "GFLOP/s (best)", "GFLOP/s (median)"], rows),
    ]


def _path_section(precision: str, path: dict[str, Any]) -> list[str]:
    vs, sweep = path["inference_vs_gemm"], path["sweep"]
    parts = [
        f"### {precision}: inference against the limit ({path['gflop_per_frame']} GFLOP per frame)",
        f"Baseline {sweep['baseline']}: {vs['baseline']['achieved_gflops']} GFLOP/s = "
        f"{vs['baseline']['fraction']} of {vs['gemm']}; best {sweep['best']}: "
        f"{vs['best']['achieved_gflops']} GFLOP/s = {vs['best']['fraction']} "
        f"(x{sweep['speedup_over_baseline']} over the baseline, session load "
        f"{sweep['extra_session_load_s']:+} s).",
        _table(
            ["options", "ms / frame", "session load s"],
            [[r["config"], r["ms_per_frame"], r["session_load_s"]] for r in sweep["rows"]],
        ),
    ]
    if "latency" in path:
        cells = [
            *path["latency"].items(),
            *((f"{k} (1 thread)", v) for k, v in path.get("latency_1_thread", {}).items()),
        ]
        parts += [
            f"#### {precision}: handler at added latency (per frame)",
            _table(
                ["cell", "wall ms", "compute ms", "wall / compute", "invocation p50 ms", "AWS calls / frame"],
                [
                    [
                        name,
                        c["wall_per_frame_ms"],
                        c["compute_per_frame_ms"],
                        c["wall_over_compute"],
                        c["invocation"]["p50_ms"],
                        c["aws_calls_per_frame"],
                    ]
                    for name, c in cells
                ],
            ),
        ]
    if "cold_start" in path:
        cold = path["cold_start"]
        parts += [
            f"#### {precision}: cold start (median {cold['median_s']} s; runs {cold['runs_s']})",
            _table(["phase", "s (median)"], [[k, v] for k, v in cold["phases_median_s"].items()]),
        ]
    return parts


def _int8_guard_section(guard: dict[str, Any]) -> list[str]:
    rows = [
        [rr, g["passed"], round(g["agreement"], 4), round(g["roc_auc_fp32"], 4), round(g["roc_auc_int8"], 4)]
        for rr, g in ((False, guard["reduce_range_false"]), (True, guard["reduce_range_true"]))
    ]
    return [
        f"### int8 guard with and without reduce_range (this CPU's int8 kernels: {guard['int8_kernels']}, "
        f"{guard['frames']} frames)",
        _table(["reduce_range", "passed", "agreement", "ROC-AUC fp32", "ROC-AUC int8"], rows),
    ]


def _pricing_section(precision: str, priced: dict[str, Any]) -> list[str]:
    rec = priced["recommendation"]
    columns = ["lambda_compute", "lambda_requests", "s3", "dynamodb", "sqs", "total"]
    return [
        f"### {precision}: cost per million frames (estimate from this CPU, 20 ms added latency)",
        _table(
            ["option", "Lambda compute", "Lambda requests", "S3", "DynamoDB", "SQS", "total $"],
            [[k, *(v[c] for c in columns)] for k, v in priced["usd_per_million"].items()],
        ),
        f"Recommended: {rec['memory_mb']} MB, {rec['onnx_threads']} onnxruntime thread(s), batch {rec['batch_size']}, "
        f"arm64: ${rec['usd_per_million']['total']} per million frames, {rec['rekognition_ratio']}x below "
        f"Rekognition DetectLabels ($1,000 per million); without object tags "
        f"${priced['recommendation_without_tags']['usd_per_million']['total']}.",
    ]


def write_section(path: Path, section: str) -> None:
    """Put ``section`` between the perf markers of ``path`` (appended the first time)."""
    text = path.read_text() if path.is_file() else ""
    block = f"{START_MARK}\n{section}{END_MARK}\n"
    if START_MARK in text and END_MARK in text:
        before, _, rest = text.partition(START_MARK)
        _, _, after = rest.partition(END_MARK)
        text = before + block + after.lstrip("\n")
    else:
        text = (text.rstrip("\n") + "\n\n" if text else "") + block
    path.write_text(text)
