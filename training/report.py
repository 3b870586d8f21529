"""The training report: report.json (everything), PNG plots and a self-contained report.html.

Plots are drawn with matplotlib's Agg backend (no display needed); the HTML embeds them and
the thumbnails of the worst mistakes as base64, so the file can be mailed or attached to a
ticket on its own.
"""

from __future__ import annotations

import io
import json
import math
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from training.crossval import CVResult
from training.metrics import SCALAR_METRICS
from training.report_format import METRIC_TITLES, fmt, mean_std
from training.report_html import render_html
from training.report_plots import plot_calibration, plot_confusion, plot_per_fold, plot_roc
from training.thresholds import GuardResult, Thresholds

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
ROC_PNG = "roc.png"
CONFUSION_PNG = "confusion.png"
CALIBRATION_PNG = "calibration.png"
PER_FOLD_PNG = "per_fold.png"


@dataclass(frozen=True)
class WorstFrame:
    """A confidently wrong out-of-fold answer, with a small JPEG of the frame as seen by the model."""

    uri: str
    true_label: str
    predicted_label: str
    confidence: float
    thumbnail_jpeg: bytes
    # Where the label can be fixed: the frame in its labelling set's page (`camsort label SET`).
    label_link: str = ""
    label_set: str = ""


@dataclass(frozen=True)
class ReportPaths:
    json: Path
    html: Path
    roc: Path
    confusion: Path
    calibration: Path
    per_fold: Path


class FrameSource(Protocol):
    """Frame i's pixels (uint8 [224, 224, 3]) on demand, e.g. downloaded when asked."""

    def __getitem__(self, i: int) -> np.ndarray: ...


def select_worst_frames(
    cv: CVResult,
    uris: list[str],
    pixels: np.ndarray | FrameSource,
    *,
    limit: int = 12,
    thumbnail_size: int = 112,
) -> list[WorstFrame]:
    """The ``limit`` wrong OOF answers with the highest confidence (the most misleading ones).

    ``pixels``: every frame's (uint8 [N, 224, 224, 3]), or a ``FrameSource`` (only the chosen
    frames are asked for: training from feature shards downloads just those)."""
    from PIL import Image

    predicted = cv.oof_probabilities.argmax(axis=1)
    confidence = cv.oof_probabilities.max(axis=1)
    wrong = np.flatnonzero(predicted != cv.y)
    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:limit]
    frames = []
    for i in order:
        image = Image.fromarray(np.asarray(pixels[i], dtype=np.uint8)).resize(
            (thumbnail_size, thumbnail_size), Image.Resampling.BILINEAR
        )
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        frames.append(
            WorstFrame(
                uri=uris[i],
                true_label=cv.labels[int(cv.y[i])],
                predicted_label=cv.labels[int(predicted[i])],
                confidence=float(confidence[i]),
                thumbnail_jpeg=buffer.getvalue(),
            )
        )
    return frames


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

    images = {
        paths.roc: plot_roc(cv),
        paths.confusion: plot_confusion(cv),
        paths.calibration: plot_calibration(cv),
        paths.per_fold: plot_per_fold(cv),
    }
    for path, png in images.items():
        _write_atomic(path, png)
    # The compared runs get their ROC and confusion too: side by side with the shipped one's.
    other_images: dict[str, dict[str, bytes]] = {}
    for name, other in (other_cv or {}).items():
        slug = "".join(c if c.isalnum() else "-" for c in name).strip("-")
        other_images[name] = {
            f"roc-{slug}.png": plot_roc(other),
            f"confusion-{slug}.png": plot_confusion(other),
        }
        for file_name, png in other_images[name].items():
            _write_atomic(out_dir / file_name, png)

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
    _write_atomic(paths.json, (json.dumps(_json_safe(report), indent=2, sort_keys=True) + "\n").encode())

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
    _write_atomic(paths.html, page.encode())
    return paths


def print_cv_table(cv: CVResult, console, *, title: str | None = None) -> None:
    """Per-fold metrics with mean ± std, per-label figures, then the chosen thresholds.

    Three narrow tables rather than one wide one: they stay readable in an 80-column terminal.
    """
    from rich.table import Table

    folds = Table(title=title or f"cross-validation ({cv.folds} grouped folds, seed {cv.seed})")
    folds.add_column("fold", justify="right")
    folds.add_column("frames", justify="right")
    for name in SCALAR_METRICS:
        folds.add_column(METRIC_TITLES[name], justify="right")
    for fold in cv.fold_metrics:
        folds.add_row(
            str(fold.fold), str(fold.n_valid), *(fmt(getattr(fold, name)) for name in SCALAR_METRICS)
        )
    folds.add_section()
    folds.add_row(
        "mean ± std",
        str(len(cv.y)),
        *(mean_std(cv.mean[name], cv.std[name]) for name in SCALAR_METRICS),
        style="bold",
    )
    console.print(folds)

    per_label = Table(title="per label, mean ± std over folds")
    for column in ("label", "frames", "precision", "recall", "F1"):
        per_label.add_column(column, justify="left" if column == "label" else "right")
    for k, label in enumerate(cv.labels):
        figures = cv.per_class[label]
        per_label.add_row(
            label,
            str(int((cv.y == k).sum())),
            *(
                mean_std(figures[name]["mean"], figures[name]["std"])
                for name in ("precision", "recall", "f1")
            ),
        )
    console.print(per_label)

    rules = Table(title=f"decision thresholds (target OOF precision {cv.thresholds.target_precision:.2f})")
    for column in ("label", "threshold", "rule", "precision @t", "recall @t", "accepted"):
        rules.add_column(column, justify="left" if column in ("label", "rule") else "right")
    for rule in cv.thresholds.per_label:
        rules.add_row(
            rule.label,
            f"{rule.threshold:.3f}",
            rule.method,
            fmt(rule.precision),
            fmt(rule.recall),
            f"{rule.accepted}/{rule.predicted}",
        )
    console.print(rules)
    console.print(
        f"coverage (frames not 'unknown'): {cv.thresholds.coverage:.1%}; "
        f"accuracy on covered frames: {fmt(cv.thresholds.covered_accuracy)}"
    )


def _json_safe(data: Any) -> Any:
    """numpy scalars/arrays to Python, NaN/inf to None (JSON has neither)."""
    if isinstance(data, dict):
        return {str(key): _json_safe(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [_json_safe(value) for value in data]
    if isinstance(data, np.ndarray):
        return _json_safe(data.tolist())
    if isinstance(data, np.generic):
        data = data.item()
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, Path):
        return str(data)
    return data


def _write_atomic(path: Path, payload: bytes) -> None:
    """Write to a unique temporary name next to ``path``, then rename: readers never see half a file."""
    staged = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        staged.write_bytes(payload)
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)


def print_side_by_side(runs: dict[str, CVResult], console, *, title: str) -> None:
    """Several cross-validations of the same frames and folds, one column each (mean ± std)."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("")
    for name in runs:
        table.add_column(name, justify="right")
    first = next(iter(runs.values()))
    for name in SCALAR_METRICS:
        table.add_row(
            METRIC_TITLES[name], *(mean_std(run.mean[name], run.std[name]) for run in runs.values())
        )
    table.add_section()
    for label in first.labels:
        table.add_row(
            f"{label}: F1",
            *(
                mean_std(run.per_class[label]["f1"]["mean"], run.per_class[label]["f1"]["std"])
                for run in runs.values()
            ),
        )
    table.add_section()
    table.add_row("coverage (not 'unknown')", *(f"{run.thresholds.coverage:.1%}" for run in runs.values()))
    table.add_row("accuracy on covered", *(fmt(run.thresholds.covered_accuracy) for run in runs.values()))
    console.print(table)
