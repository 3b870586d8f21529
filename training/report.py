"""The training report: report.json (everything), PNG plots and a self-contained report.html.

Plots are drawn with matplotlib's Agg backend (no display needed); the HTML embeds them and
the thumbnails of the worst mistakes as base64, so the file can be mailed or attached to a
ticket on its own.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from training.crossval import SCALAR_METRICS, CVResult, GuardResult, Thresholds

REPORT_JSON = "report.json"
REPORT_HTML = "report.html"
ROC_PNG = "roc.png"
CONFUSION_PNG = "confusion.png"
CALIBRATION_PNG = "calibration.png"
PER_FOLD_PNG = "per_fold.png"

METRIC_TITLES = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced acc.",
    "roc_auc": "ROC-AUC",
    "log_loss": "log loss",
}


@dataclass(frozen=True)
class WorstFrame:
    """A confidently wrong out-of-fold answer, with a small JPEG of the frame as seen by the model."""

    uri: str
    true_label: str
    predicted_label: str
    confidence: float
    thumbnail_jpeg: bytes


@dataclass(frozen=True)
class ReportPaths:
    json: Path
    html: Path
    roc: Path
    confusion: Path
    calibration: Path
    per_fold: Path


def select_worst_frames(
    cv: CVResult, uris: list[str], pixels: np.ndarray, *, limit: int = 12, thumbnail_size: int = 112
) -> list[WorstFrame]:
    """The ``limit`` wrong OOF answers with the highest confidence (the most misleading ones)."""
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
    ``functions.manifest.Manifest`` (or its dict), or None when no model was exported.
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
            }
            for frame in worst_frames
        ],
        "files": {name: path.name for name, path in vars(paths).items()},
    }
    _write_atomic(paths.json, (json.dumps(_json_safe(report), indent=2, sort_keys=True) + "\n").encode())

    page = _render_html(
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
            str(fold.fold), str(fold.n_valid), *(_fmt(getattr(fold, name)) for name in SCALAR_METRICS)
        )
    folds.add_section()
    folds.add_row(
        "mean ± std",
        str(len(cv.y)),
        *(_mean_std(cv.mean[name], cv.std[name]) for name in SCALAR_METRICS),
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
                _mean_std(figures[name]["mean"], figures[name]["std"])
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
            _fmt(rule.precision),
            _fmt(rule.recall),
            f"{rule.accepted}/{rule.predicted}",
        )
    console.print(rules)
    console.print(
        f"coverage (frames not 'unknown'): {cv.thresholds.coverage:.1%}; "
        f"accuracy on covered frames: {_fmt(cv.thresholds.covered_accuracy)}"
    )


def _mean_std(mean: float, std: float) -> str:
    return f"{_fmt(mean)}±{_fmt(std)}"


# --- plots ---------------------------------------------------------------------------------


def plot_roc(cv: CVResult) -> bytes:
    from sklearn.metrics import auc, roc_curve

    figure, axes = _figure(1, 1, (5.5, 5))
    ax = axes[0]
    # Binary: the positive class (the second label) only; its complement is the same curve.
    classes = [1] if cv.task == "binary" else range(len(cv.labels))
    for k in classes:
        truth = (cv.y == k).astype(int)
        if truth.min() == truth.max():
            continue  # a label with no positives or no negatives has no curve
        fpr, tpr, _ = roc_curve(truth, cv.oof_probabilities[:, k])
        ax.plot(fpr, tpr, label=f"{cv.labels[k]} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, out-of-fold (one vs rest)")
    ax.legend(loc="lower right")
    return _png(figure)


def plot_confusion(cv: CVResult) -> bytes:
    counts = np.array(cv.pooled["confusion"], dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = counts / counts.sum(axis=1, keepdims=True)
    normalised = np.nan_to_num(normalised)
    size = 3 + 0.6 * len(cv.labels)
    figure, axes = _figure(1, 2, (2 * size, size))
    for ax, matrix, title, fmt in (
        (axes[0], counts, "counts", "{:d}"),
        (axes[1], normalised, "normalised by true label", "{:.2f}"),
    ):
        ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
        ticks = range(len(cv.labels))
        ax.set_xticks(ticks, cv.labels, rotation=45, ha="right")
        ax.set_yticks(ticks, cv.labels)
        ax.set(xlabel="predicted", ylabel="true", title=f"confusion, OOF ({title})")
        for i in ticks:
            for j in ticks:
                value = matrix[i, j]
                ax.text(
                    j,
                    i,
                    fmt.format(int(value) if fmt == "{:d}" else float(value)),
                    ha="center",
                    va="center",
                    color="white" if normalised[i, j] > 0.5 else "black",
                )
    return _png(figure)


def plot_calibration(cv: CVResult, bins: int = 10) -> bytes:
    """Reliability of the top-class confidence: how often a frame at confidence c is right."""
    confidence = cv.oof_probabilities.max(axis=1)
    correct = cv.oof_probabilities.argmax(axis=1) == cv.y
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    centres, accuracy, counts = [], [], []
    for b in range(bins):
        mask = which == b
        if mask.any():
            centres.append(float(confidence[mask].mean()))
            accuracy.append(float(correct[mask].mean()))
            counts.append(int(mask.sum()))
    figure, axes = _figure(1, 1, (5.5, 5))
    ax = axes[0]
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8, label="perfectly calibrated")
    ax.plot(centres, accuracy, marker="o", label="OOF")
    for x, y, n in zip(centres, accuracy, counts, strict=True):
        ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(4, -12), fontsize=8)
    for rule in cv.thresholds.per_label:
        if 0.0 < rule.threshold < 1.0:
            ax.axvline(rule.threshold, color="tab:red", alpha=0.3, linewidth=0.8)
    ax.set(
        xlabel="top-class confidence",
        ylabel="accuracy",
        xlim=(0, 1),
        ylim=(0, 1.02),
        title="calibration, OOF (frames per bin; red: thresholds)",
    )
    ax.legend(loc="upper left")
    return _png(figure)


def plot_per_fold(cv: CVResult) -> bytes:
    names = ("accuracy", "balanced_accuracy", "roc_auc")
    figure, axes = _figure(1, 1, (6, 4))
    ax = axes[0]
    folds = [fold.fold for fold in cv.fold_metrics]
    for name in names:
        ax.plot(
            folds, [getattr(fold, name) for fold in cv.fold_metrics], marker="o", label=METRIC_TITLES[name]
        )
    ax.set_xticks(folds)
    ax.set(xlabel="fold", ylabel="score", ylim=(0, 1.02), title="per-fold validation scores")
    ax.legend(loc="lower right")
    return _png(figure)


def _figure(rows: int, cols: int, size: tuple[float, float]):
    import matplotlib

    matplotlib.use("Agg")  # files only, never a display
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(rows, cols, figsize=size, squeeze=False)
    return figure, list(axes.ravel())


def _png(figure) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


# --- HTML ----------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1200px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f3f3f3; }
td.l, th.l { text-align: left; }
.pass { color: #1a7f37; font-weight: bold; } .fail { color: #cf222e; font-weight: bold; }
.warn { background: #fff8c5; border: 1px solid #d4a72c; padding: 0.5em 1em; }
.frames { display: flex; flex-wrap: wrap; gap: 1em; }
.frame { width: 180px; font-size: 0.8em; word-break: break-all; }
.frame img { width: 112px; height: 112px; display: block; }
img.plot { max-width: 100%; border: 1px solid #eee; margin: 0.3em; }
"""


def _render_html(
    *,
    created_at,
    cv,
    other_cv,
    dataset_summary,
    neardup,
    thresholds,
    guard,
    parity,
    manifest,
    worst_frames,
    images,
) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>camsort training report — {e(', '.join(cv.labels))}</title><style>{_STYLE}</style></head><body>",
        "<h1>camsort training report</h1>",
        f"<p>created {e(created_at)} · labels: {e(', '.join(cv.labels))} · task: {e(cv.task)}</p>",
    ]
    if manifest:
        if manifest.get("weights") == "none":
            parts.append(
                "<p class='warn'>The backbone was randomly initialised (<code>--weights none</code>): "
                "these figures say nothing about a model built on ImageNet weights.</p>"
            )
        parts.append("<h2>Model</h2>")
        parts.append(
            _kv_table(
                {
                    key: manifest.get(key)
                    for key in (
                        "model_version",
                        "model_sha256",
                        "backbone",
                        "weights",
                        "precision",
                        "created_at",
                    )
                }
                | {"precision decision": (manifest.get("quantization") or {}).get("decision")}
            )
        )
    else:
        parts.append("<p class='warn'>No model was exported with this report.</p>")

    parts.append("<h2>Training set</h2>")
    parts.append(_kv_table({key: value for key, value in dataset_summary.items() if key != "skipped"}))
    skipped = dataset_summary.get("skipped") or []
    if skipped:
        parts.append(f"<p>{len(skipped)} file(s) skipped:</p>")
        parts.append(
            _rows_table(["uri", "reason"], [[s.get("uri", ""), s.get("reason", "")] for s in skipped])
        )
    parts.append("<h3>Near-duplicate groups</h3>" + _kv_table(neardup))

    parts.append(f"<h2>Cross-validation ({cv.folds} grouped folds, seed {cv.seed})</h2>")
    parts.append(_cv_tables(cv))
    for name, other in other_cv.items():
        parts.append(f"<h3>For comparison: {e(name)} features</h3>" + _cv_tables(other))

    parts.append(f"<h2>Decision thresholds (target precision {thresholds.target_precision:.2f})</h2>")
    parts.append(
        _rows_table(
            ["label", "threshold", "rule", "OOF precision at t", "recall at t", "accepted / predicted"],
            [
                [
                    rule.label,
                    f"{rule.threshold:.4f}",
                    rule.method,
                    _fmt(rule.precision),
                    _fmt(rule.recall),
                    f"{rule.accepted} / {rule.predicted}",
                ]
                for rule in thresholds.per_label
            ],
        )
    )
    parts.append(
        f"<p>Coverage (frames not <code>unknown</code>): {thresholds.coverage:.1%}; "
        f"accuracy on covered frames: {_fmt(thresholds.covered_accuracy)}.</p>"
    )

    parts.append("<h2>Plots</h2>")
    for name, png in images.items():
        parts.append(
            f"<img class='plot' alt='{e(name)}' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
        )

    parts.append("<h2>int8 quantization guard</h2>")
    if guard is None:
        parts.append("<p>Not run (fp32 requested).</p>")
    else:
        verdict = "<span class='pass'>pass</span>" if guard.passed else "<span class='fail'>fail</span>"
        parts.append(f"<p>{verdict}: {e(guard.reason)}</p>" + _kv_table(guard.to_dict()))

    parts.append("<h2>Export parity (ONNX vs Keras + LightGBM)</h2>")
    parts.append(_kv_table(_flatten(parity)) if parity else "<p>Not run.</p>")

    parts.append(f"<h2>Most confident mistakes (out-of-fold, {len(worst_frames)})</h2>")
    if not worst_frames:
        parts.append("<p>None: every out-of-fold answer was right.</p>")
    parts.append("<div class='frames'>")
    for frame in worst_frames:
        thumbnail = base64.b64encode(frame.thumbnail_jpeg).decode()
        parts.append(
            f"<div class='frame'><img alt='{e(frame.uri)}' src='data:image/jpeg;base64,{thumbnail}'>"
            f"true <b>{e(frame.true_label)}</b>, predicted <b>{e(frame.predicted_label)}</b> "
            f"({frame.confidence:.3f})<br>{e(frame.uri)}</div>"
        )
    parts.append("</div></body></html>")
    return "\n".join(parts)


def _cv_tables(cv: CVResult) -> str:
    rows = [
        [str(fold.fold), str(fold.n_valid), *(_fmt(getattr(fold, name)) for name in SCALAR_METRICS)]
        for fold in cv.fold_metrics
    ]
    rows.append(
        ["mean ± std", str(len(cv.y)), *(f"{_fmt(cv.mean[n])} ± {_fmt(cv.std[n])}" for n in SCALAR_METRICS)]
    )
    folds = _rows_table(["fold", "frames", *(METRIC_TITLES[n] for n in SCALAR_METRICS)], rows)
    per_class = _rows_table(
        ["label", "frames", "precision", "recall", "F1"],
        [
            [
                label,
                str(int((cv.y == k).sum())),
                *(
                    f"{_fmt(cv.per_class[label][m]['mean'])} ± {_fmt(cv.per_class[label][m]['std'])}"
                    for m in ("precision", "recall", "f1")
                ),
            ]
            for k, label in enumerate(cv.labels)
        ],
    )
    return folds + per_class


def _rows_table(header: list[str], rows: list[list[Any]]) -> str:
    e = html.escape
    head = "".join(f"<th class='{'l' if i == 0 else ''}'>{e(str(h))}</th>" for i, h in enumerate(header))
    body = "".join(
        "<tr>"
        + "".join(f"<td class='{'l' if i == 0 else ''}'>{e(str(v))}</td>" for i, v in enumerate(row))
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _kv_table(data: dict[str, Any] | None) -> str:
    if not data:
        return "<p>—</p>"
    return _rows_table(["", "value"], [[key, _fmt(value)] for key, value in data.items()])


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value).lower()
    if isinstance(value, float | np.floating):
        if not math.isfinite(value):
            return "n/a"
        return f"{value:.4g}" if abs(value) < 1e-3 and value != 0 else f"{value:.3f}"
    if isinstance(value, dict):
        if not value:
            return "none"
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


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
