"""The training report files: report.json (everything), PNG plots and a self-contained report.html.

Plots are drawn with matplotlib's Agg backend (no display needed); the HTML embeds them and
the thumbnails of the worst mistakes as base64, so the file can be mailed or attached to a
ticket on its own.
"""

from __future__ import annotations

import json
import math
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from training.fit.crossval import CVResult, MultiLabelCV
from training.fit.thresholds import GuardResult, Thresholds
from training.report.html_page import (
    HEADS_PNG,
    fine_tuning_html,
    heads_html,
    render_html,
    render_multilabel_html,
)
from training.report.plots import (
    plot_calibration,
    plot_confusion,
    plot_heads,
    plot_multilabel_folds,
    plot_multilabel_roc,
    plot_per_fold,
    plot_roc,
)
from training.report.worst_frames import WorstFrame

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
ROC_PNG = "roc.png"
CONFUSION_PNG = "confusion.png"
CALIBRATION_PNG = "calibration.png"
PER_FOLD_PNG = "per_fold.png"


@dataclass(frozen=True)
class ReportPaths:
    json: Path
    html: Path
    roc: Path
    confusion: Path
    calibration: Path
    per_fold: Path

    def relocated(self, out_dir: Path) -> ReportPaths:
        """The same files in ``out_dir`` (the report is written into a staging directory first)."""
        return ReportPaths(**{name: Path(out_dir) / path.name for name, path in vars(self).items()})


@dataclass(frozen=True)
class MultiLabelReportPaths:
    json: Path
    html: Path
    plots: list[Path]

    def relocated(self, out_dir: Path) -> MultiLabelReportPaths:
        """The same files in ``out_dir`` (the report is written into a staging directory first)."""
        out_dir = Path(out_dir)
        return MultiLabelReportPaths(
            out_dir / self.json.name, out_dir / self.html.name, [out_dir / p.name for p in self.plots]
        )


def write_report(
    out_dir: Path,
    *,
    cv: CVResult,
    dataset_summary: dict[str, Any],
    neardup: dict[str, Any],
    thresholds: Thresholds,
    guard: GuardResult | None,
    parity: dict[str, Any] | None,
    manifest: Any | None,
    worst_frames: list[WorstFrame],
    other_cv: dict[str, CVResult] | None = None,
) -> ReportPaths:
    """Write report.json, the PNGs and report.html into ``out_dir``; return their paths.

    ``cv`` is the cross-validation of the shipped model; ``other_cv`` holds the runs that
    were only compared (e.g. ``{"fp32": ...}`` when int8 ships). ``manifest`` is a
    ``functions.frames.manifest.Manifest`` (or its dict), or None when no model was exported.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = ReportPaths(
        json=out_dir / REPORT_JSON,
        html=out_dir / REPORT_HTML,
        roc=out_dir / ROC_PNG,
        confusion=out_dir / CONFUSION_PNG,
        calibration=out_dir / CALIBRATION_PNG,
        per_fold=out_dir / PER_FOLD_PNG,
    )
    manifest_dict = manifest.to_dict() if hasattr(manifest, "to_dict") else manifest
    created_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    images, other_images = _write_plots(paths, cv, other_cv or {})

    report = {
        "created_at": created_at,
        "labels": cv.labels,
        "task": cv.task,
        "cv": cv.to_dict(),
        "other_cv": {name: other.to_dict() for name, other in (other_cv or {}).items()},
        "dataset": dataset_summary,
        "neardup": neardup,
        "thresholds": thresholds.to_dict(),
        "guard": guard.to_dict() if guard is not None else None,
        "parity": parity,
        "manifest": manifest_dict,
        "worst_frames": [
            {
                "uri": frame.uri,
                "true_label": frame.true_label,
                "predicted_label": frame.predicted_label,
                "confidence": frame.confidence,
                "label_link": frame.label_link,
                "label_set": frame.label_set,
            }
            for frame in worst_frames
        ],
        "files": {name: path.name for name, path in vars(paths).items()},
    }
    write_atomic(paths.json, (json.dumps(json_safe(report), indent=2, sort_keys=True) + "\n").encode())

    page = render_html(
        created_at=created_at,
        cv=cv,
        other_cv=other_cv or {},
        dataset_summary=dataset_summary,
        neardup=neardup,
        thresholds=thresholds,
        guard=guard,
        parity=parity,
        manifest=manifest_dict,
        worst_frames=worst_frames,
        images={path.name: png for path, png in images.items()},
        other_images=other_images,
    )
    write_atomic(paths.html, page.encode())
    return paths


def _write_plots(
    paths: ReportPaths, cv: CVResult, other_cv: dict[str, CVResult]
) -> tuple[dict[Path, bytes], dict[str, dict[str, bytes]]]:
    """The shipped run's plots, and the ROC and confusion of each compared run (side by side)."""
    images = {
        paths.roc: plot_roc(cv),
        paths.confusion: plot_confusion(cv),
        paths.calibration: plot_calibration(cv),
        paths.per_fold: plot_per_fold(cv),
    }
    for path, png in images.items():
        write_atomic(path, png)
    other_images: dict[str, dict[str, bytes]] = {}
    for name, other in other_cv.items():
        slug = "".join(c if c.isalnum() else "-" for c in name).strip("-")
        other_images[name] = {
            f"roc-{slug}.png": plot_roc(other),
            f"confusion-{slug}.png": plot_confusion(other),
        }
        for file_name, png in other_images[name].items():
            write_atomic(paths.json.parent / file_name, png)
    return images, other_images


def write_multilabel_report(
    out_dir: Path,
    *,
    cv: MultiLabelCV,
    dataset_summary: dict[str, Any],
    neardup: dict[str, Any],
    guard=None,
    parity: dict[str, Any] | None = None,
    manifest=None,
    heads: dict[str, Any] | None = None,
    head_reason: str = "",
) -> MultiLabelReportPaths:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = {ROC_PNG: plot_multilabel_roc(cv), PER_FOLD_PNG: plot_multilabel_folds(cv)}
    if heads and len(heads) > 1:
        plots[HEADS_PNG] = plot_heads(heads)
    for name, payload in plots.items():
        write_atomic(out_dir / name, payload)
    report = {
        "task": "multilabel",
        "cross_validation": cv.to_dict(),
        "dataset": dataset_summary,
        "near_duplicates": neardup,
        "int8_guard": guard.to_dict() if guard is not None else None,
        "parity": parity,
        "manifest": manifest.to_dict() if manifest is not None else None,
        "heads": {name: {"mean": h.mean, "std": h.std} for name, h in (heads or {}).items()},
        "head_choice": head_reason,
    }
    write_atomic(out_dir / REPORT_JSON, (json.dumps(json_safe(report), indent=2) + "\n").encode())
    write_atomic(out_dir / REPORT_HTML, render_multilabel_html(cv, report, list(plots), heads or {}).encode())
    return MultiLabelReportPaths(out_dir / REPORT_JSON, out_dir / REPORT_HTML, [out_dir / n for n in plots])


def add_heads_to_report(out_dir: Path, heads: dict[str, Any], reason: str) -> None:
    """Binary/multiclass: the heads side by side, added to the report training.report.write wrote."""
    out_dir = Path(out_dir)
    write_atomic(out_dir / HEADS_PNG, plot_heads(heads))
    report = json.loads((out_dir / REPORT_JSON).read_text())
    report["heads"] = {name: {"mean": h.mean, "std": h.std} for name, h in heads.items()}
    report["head_choice"] = reason
    write_atomic(out_dir / REPORT_JSON, (json.dumps(json_safe(report), indent=2) + "\n").encode())
    page = (out_dir / REPORT_HTML).read_text()
    page = page.replace("</body>", heads_html(heads, reason) + "</body>", 1)
    write_atomic(out_dir / REPORT_HTML, page.encode())


def add_fine_tuning_to_report(
    out_dir: Path, frozen: MultiLabelCV, tuned: MultiLabelCV, decision: str
) -> None:
    """Frozen and fine-tuned side by side (same frames, same folds), added to the multi-label report."""
    out_dir = Path(out_dir)
    write_atomic(out_dir / "roc-frozen.png", plot_multilabel_roc(frozen))
    report = json.loads((out_dir / REPORT_JSON).read_text())
    report["frozen"] = frozen.to_dict()
    report["fine_tuning_decision"] = decision
    write_atomic(out_dir / REPORT_JSON, (json.dumps(json_safe(report), indent=2) + "\n").encode())
    section = fine_tuning_html(frozen, tuned, decision)
    page = (out_dir / REPORT_HTML).read_text().replace("</body>", section + "</body>", 1)
    write_atomic(out_dir / REPORT_HTML, page.encode())


def json_safe(data: Any) -> Any:
    """numpy scalars/arrays to Python, NaN/inf to None (JSON has neither)."""
    if isinstance(data, dict):
        return {str(key): json_safe(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [json_safe(value) for value in data]
    if isinstance(data, np.ndarray):
        return json_safe(data.tolist())
    if isinstance(data, np.generic):
        data = data.item()
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, Path):
        return str(data)
    return data


def write_atomic(path: Path, payload: bytes) -> None:
    """Write to a unique temporary name next to ``path``, then rename: readers never see half a file."""
    staged = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        staged.write_bytes(payload)
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
