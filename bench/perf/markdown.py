"""The perf run's markdown: the "Performance" section of results.md, between its markers."""

from __future__ import annotations

import json
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
    if "camera_health" in results:
        parts += health_section(results["camera_health"])
    if "int8_guard" in results:
        parts += _int8_guard_section(results["int8_guard"])
    for precision, priced in results.get("pricing", {}).items():
        parts += _pricing_section(precision, priced)
    parts += bill_section(results)
    parts += latency_section(results)
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


def health_section(health: dict[str, Any]) -> list[str]:
    """What camera health adds per frame, against the model call (bench.perf.health_cost)."""
    sizes = health["state_item_bytes"]
    return [
        "### Camera health: added cost per frame",
        _table(
            [
                f"model call ({health.get('model_precision', 'int8')}, batch 10) ms/frame",
                "measures ms/frame",
                "state step ms/frame",
                "added / model",
            ],
            [
                [
                    health["model_ms_per_frame"],
                    health["measure_ms_per_frame"],
                    health["state_step_ms_per_frame"],
                    f"{health['ratio_to_model']:.2%}",
                ]
            ],
        ),
        f"No request: health rides in the camera's state write. The state item with a full window: "
        f"{sizes['without_health']} bytes without health, {sizes['with_health']} with (one write unit below 1,024).",
        *_health_detection(health),
    ]


def _health_detection(health: dict[str, Any]) -> list[str]:
    parts = []
    ratios = health.get("defocus_sharpness_ratio_by_radius_px")
    if ratios:
        parts += [
            "Sharpness at 224 x 224 of a frame blurred at 1280 x 720, as a fraction of the sharp frame's "
            "(median of 8 views; `defocused` below 0.25):",
            _table([f"radius {radius} px" for radius in ratios], [list(ratios.values())]),
        ]
    detection = health.get("detection")
    if detection:
        rows = [
            [d["camera_id"], d["tamper"], d["frames"] if d["frames"] is not None else "missed", d["seconds"]]
            for d in detection["detections"]
        ]
        parts += [
            f"`camsort synth --tamper` ({detection['cameras']} fixed views, {detection['frames_per_camera']} frames "
            "each at 2 frames/s, tampered half-way) through the loader, the measures and the health step:",
            _table(["camera", "tamper", "frames to detect", "seconds (capture time)"], rows),
            f"False alarms: {len(detection['false_alarms'])} in {detection['healthy_frames']} healthy frames.",
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
    services = list(rec["usd_per_million"]["by_service"])
    parts = [
        f"### {precision}: cost per million frames (compute estimated from this CPU at 20 ms added latency; "
        "requests measured)",
        _table(
            ["option", *services, "total $"],
            [
                [k, *(v["by_service"].get(s, 0.0) for s in services), v["total"]]
                for k, v in priced["usd_per_million"].items()
            ],
        ),
        f"Recommended: {rec['memory_mb']} MB, {rec['onnx_threads']} onnxruntime thread(s), batch {rec['batch_size']}, "
        f"arm64: ${rec['usd_per_million']['total']} per million frames, {rec['rekognition_ratio']}x below "
        "Rekognition DetectLabels ($1,000 per million).",
    ]
    tagged = priced.get("recommendation_with_tags")
    if tagged:
        parts[-1] += f" With object tags on (writeTags): ${tagged['usd_per_million']['total']}."
    return parts


def bill_section(results: dict[str, Any]) -> list[str]:
    """The default deployment's bill, line by line: what each measured request costs per million frames."""
    rec = results.get("pricing", {}).get("int8", {}).get("recommendation")
    measured = results.get("requests")
    if not rec or not measured:
        return []
    return [
        "### The bill: the default deployment, int8, arm64, per million frames",
        *bill_table(rec, measured),
    ]


def latency_section(results: dict[str, Any]) -> list[str]:
    """Upload to result: measured through the local system, and modelled for AWS by rate and window."""
    parts = []
    measured = results.get("upload_to_result")
    if measured:
        parts += [
            f"### Upload to result, through the whole local system (batch {measured['batch_size']}, "
            f"window {measured['window_s']} s; results polled every {measured['poll_s'] * 1000:.0f} ms)",
            _table(
                ["load", "frames", "frames/s", "p50 ms", "p95 ms", "max ms"],
                [
                    [
                        name,
                        v["frames"],
                        v["frames_per_second"] or "burst",
                        v["p50_ms"],
                        v["p95_ms"],
                        v["max_ms"],
                    ]
                    for name, v in measured["loads"].items()
                ],  # fmt: skip
            ),
        ]
    rows = results.get("batching_tradeoff")
    if rows:
        parts += [
            "### Upload to result on AWS (model: S3 delivery 1 s + window wait + 20 ms invoke + the measured "
            "function time), and the bill, by rate and maximumBatchingWindow (batchSize 10)",
            _table(
                [
                    "frames/s",
                    "window s",
                    "frames per invocation",
                    "best s",
                    "mean s",
                    "worst s",
                    "$ per million",
                ],
                [
                    [
                        r["rate_fps"],
                        r["window_s"],
                        r["frames_per_invocation"],
                        r["best_s"],
                        r["mean_s"],
                        r["worst_s"],
                        r["usd_per_million"],
                    ]
                    for r in rows
                ],  # fmt: skip
            ),
        ]
    return parts


def bill_summary(perf_json: Path) -> str:
    """The bill from the last `make bench` (bench/perf.json), for `camsort package`'s summary."""
    results = json.loads(perf_json.read_text()) if perf_json.is_file() else {}
    section = bill_section(results)
    if not section:
        return (
            f"No measured bill in {perf_json}: run `make bench` (or `camsort bench --bill-only MODEL_DIR`)."
        )
    when = results["requests"].get("measured_at", "?")
    return "\n\n".join(
        [
            *section,
            f"(from {perf_json}: requests counted {when}, compute timed {results.get('created_at', '?')})",
        ]
    )


def bill_table(rec: dict[str, Any], measured: dict[str, Any]) -> list[str]:
    """The recommendation's lines with the measured units behind them (also `camsort package`'s summary)."""
    from bench.perf.pricing import PRICES, bill_lines

    batch = rec["batch_size"]
    rows = [
        [
            "Lambda compute",
            f"{rec['memory_mb']} MB x {rec['seconds_per_batch']} s / {batch} frames",
            "",
            rec["usd_per_million"]["lambda_compute"],
        ]
    ]
    for line in bill_lines(measured):
        rows.append(
            [
                line.name,
                f"{line.units_per_frame(batch):.4g}",
                PRICES[line.price].per,
                rec["usd_per_million"]["lines"][line.name],
            ]
        )
    rows.append(["total", "", "", rec["usd_per_million"]["total"]])
    left_out = ", ".join(f"{name} ({count})" for name, count in measured.get("left_out", {}).items())
    return [
        _table(["line", "units per frame", "unit", "$ per million"], rows),
        f"Measured: {measured['frames']} frames in {measured['invocations']} invocations through the local system "
        f"(outcomes {measured['outcomes']}). Not per frame, left out: {left_out or 'nothing'}; "
        "the cameras' own PutObject ($5.00 per million uploads) and storage.",
        *_review_note(measured),
    ]


def _review_note(measured: dict[str, Any]) -> list[str]:
    from bench.perf.pricing import FLEET_FRAMES_PER_CAMERA_HOUR, review_scale, review_share_cap

    scale = review_scale(measured, review_share_cap())
    if scale >= 1.0:
        return []
    return [
        f"The review lines are the measured ones x {scale:.3f}: this short run marked every unsure frame it "
        f"could, a camera of the fleet ({FLEET_FRAMES_PER_CAMERA_HOUR} frames an hour) marks at most "
        f"{review_share_cap():.1%} of its frames (CAMSORT_REVIEW_PER_HOUR) and then stops asking for that hour."
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
