"""Raw child measurements -> the figures of one path, the draft comparison, the titles (pure)."""

from __future__ import annotations

from typing import Any

from bench import stats
from bench.child import ChildRun
from bench.config import (
    PRECISIONS,
)
from bench.report import FP32, INT8, REFERENCE

STAGE_GROUPS = {
    "S3 + DynamoDB calls": ("dup_check", "get_object", "tag", "write"),
    "compute (decode + inference + decide)": ("decode", "inference", "familiarity", "decide"),
    "all stages": ("dup_check", "get_object", "decode", "inference", "familiarity", "decide", "tag", "write"),
}


def stage_group_summaries(stages_s: dict[str, list[float]]) -> dict[str, dict[str, float | int]]:
    """Summaries of the per-frame sums of each stage group (stages a path lacks count as 0)."""
    frames = max((len(samples) for samples in stages_s.values()), default=0)
    summaries = {}
    for group, names in STAGE_GROUPS.items():
        present = [stages_s[name] for name in names if stages_s.get(name)]
        if frames and present:
            summaries[group] = stats.summarize_ms([sum(parts) for parts in zip(*present, strict=True)])
    return summaries


def batch_split(wall_s: list[float], compute_s: list[float] | None, frames: int) -> dict[str, float] | None:
    """Mean per-frame wall, compute alone and the rest (AWS round trips + the handler's own work), in ms.

    Means, not medians: the three must add up (wall = compute + AWS and the rest), and they are
    sums over the same frames. None when the compute was not measured (an older child).
    """
    if not compute_s or frames <= 0:
        return None
    wall, compute = sum(wall_s) * 1000.0 / frames, sum(compute_s) * 1000.0 / frames
    return {"wall": round(wall, 2), "compute": round(compute, 2), "aws_and_rest": round(wall - compute, 2)}


def summarize_path(
    cold_runs: list[ChildRun],
    full: ChildRun,
    profile: dict[str, Any] | None,
    labels: dict[str, int],
) -> dict[str, Any]:
    """Raw child measurements -> the figures of one path (pure)."""
    result = full.result
    per_frame_batch_10 = [
        seconds / size for seconds, size in zip(result["batch_10_s"], result["batch_10_sizes"], strict=True)
    ]
    frames_batch_10 = sum(result["batch_10_sizes"])
    cold = [run.marks_s["first_result"] for run in cold_runs]
    phases = {
        name: [run.marks_s[name] for run in cold_runs]
        for name in ("started", "imported", "first_result")
        if all(name in run.marks_s for run in cold_runs)
    }
    stages = {name: stats.summarize_ms(samples) for name, samples in result["stages_s"].items() if samples}
    stages.update(stage_group_summaries(result["stages_s"]))
    summary = {
        "warm_batch_1": stats.summarize_ms(result["batch_1_s"]),
        "warm_batch_10_per_frame": stats.summarize_ms(per_frame_batch_10),
        "batch_10_split_ms": batch_split(
            result["batch_10_s"], result.get("batch_10_compute_s"), frames_batch_10
        ),
        "batch_1_split_ms": batch_split(
            result["batch_1_s"], result.get("batch_1_compute_s"), len(result["batch_1_s"])
        ),
        "throughput_fps": {
            "batch_1": stats.throughput(len(result["batch_1_s"]), result["batch_1_wall_s"]),
            "batch_10": stats.throughput(frames_batch_10, result["batch_10_wall_s"]),
        },
        "cold_start_s": {
            "runs": [round(value, 3) for value in cold],
            "median": round(stats.median(cold), 3),
            # Median over the cold runs of each mark: process start -> imports done -> first result.
            "phases_median_s": {name: round(stats.median(values), 3) for name, values in phases.items()},
            "full_run_first_result_s": round(full.marks_s["first_result"], 3)
            if "first_result" in full.marks_s
            else None,
        },
        "peak_rss_mib": full.peak_rss_mib,
        "stages": stages,
        "labels": labels,
    }
    if result.get("draft"):
        summary["draft_raw"] = result["draft"]
    if profile:
        summary["profile"] = {key: value for key, value in profile.items() if key != "event"}
    return summary


# --- draft ------------------------------------------------------------------------------------------


def summarize_draft(paths: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Decode times (both handler children's samples pooled) and label agreement per model."""
    raws = {
        path: paths[path].pop("draft_raw")
        for path in PRECISIONS
        if path in paths and "draft_raw" in paths[path]
    }
    if not raws:
        return None
    draft_s = [s for raw in raws.values() for s in raw["decode_draft_s"]]
    full_s = [s for raw in raws.values() for s in raw["decode_full_s"]]
    return {
        "decode": {"draft": stats.summarize_ms(draft_s), "full": stats.summarize_ms(full_s)},
        "agreement": {
            path: {
                "n": len(raw["labels_draft"]),
                "labels": stats.agreement(raw["labels_draft"], raw["labels_full"]),
                "top_labels": stats.agreement(raw["top_labels_draft"], raw["top_labels_full"]),
                "max_abs_probability_diff": raw["max_abs_probability_diff"],
            }
            for path, raw in raws.items()
        },
    }


def add_titles(results: dict[str, Any]) -> None:
    titles = {
        REFERENCE: "(a) the notebook way: keras load_img + preprocess_input + model.predict per frame + LightGBM Booster",
        FP32: "(b) functions.handler.lambda_handler, fp32 model.onnx",
        INT8: "(c) functions.handler.lambda_handler, int8 (QDQ) model.onnx",
    }
    for path, title in titles.items():
        if path in results["paths"]:
            results["paths"][path]["title"] = title
