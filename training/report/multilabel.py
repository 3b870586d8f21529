"""The multi-label report: terminal tables, report.json, report.html and its plots.

Tables and plots show mean ± std over folds (training.fit.multilabel explains how the per-fold
figures are made). When several classifier heads were cross-validated on the same folds,
they appear side by side, with the one that ships and why.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.fit.multilabel import PER_LABEL_METRICS, SET_METRICS, MultiLabelCV
from training.report.write import REPORT_HTML, REPORT_JSON, ROC_PNG, _json_safe, _write_atomic
from training.report.formatting import fmt as _fmt
from training.report.formatting import mean_std as _mean_std
from training.report.html_page import _STYLE, _kv_table, _rows_table
from training.report.plots import _figure, _png

PER_FOLD_PNG = "per_fold.png"
HEADS_PNG = "heads.png"
SET_TITLES = {
    "micro_f1": "micro F1",
    "macro_f1": "macro F1",
    "subset_accuracy": "subset acc.",
    "hamming_loss": "Hamming loss",
    "log_loss": "log loss",
}


@dataclass(frozen=True)
class MultiLabelReportPaths:
    json: Path
    html: Path
    plots: list[Path]


def print_multilabel_tables(cv: MultiLabelCV, console, *, title: str | None = None, heads=None) -> None:
    from rich import box
    from rich.table import Table

    # no vertical rules: seven "0.774±0.007" columns then fit an 80-column terminal
    folds = Table(
        title=title or f"multi-label cross-validation ({cv.folds} grouped folds, seed {cv.seed})",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    folds.add_column("fold", justify="right", no_wrap=True)
    folds.add_column("n", justify="right", no_wrap=True)
    for name in SET_METRICS:
        folds.add_column(SET_TITLES[name].replace(" ", "\n"), justify="right", no_wrap=True)
    for fold in cv.fold_metrics:
        folds.add_row(str(fold["fold"]), str(fold["n_valid"]), *(_fmt(fold[name]) for name in SET_METRICS))
    folds.add_section()
    folds.add_row(
        "mean±sd", str(len(cv.y)), *(_short(cv.mean[n], cv.std[n]) for n in SET_METRICS), style="bold"
    )
    console.print(folds)

    per_label = Table(title="per label, mean ± std over folds", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("label", "n", "precision", "recall", "F1", "ROC-AUC", "threshold"):
        per_label.add_column(column, justify="left" if column == "label" else "right", no_wrap=True)
    for k, label in enumerate(cv.labels):
        figures = cv.per_label[label]
        per_label.add_row(
            label,
            str(int(cv.y[:, k].sum())),
            *(_short(figures[name]["mean"], figures[name]["std"]) for name in PER_LABEL_METRICS),
            f"{cv.thresholds[label]:.3f}",
        )
    console.print(per_label)
    console.print(f"folds: {cv.fold_strategy}")
    if heads:
        print_heads_table(heads, console)


def _short(mean: float, std: float) -> str:
    """``0.774±0.01``: narrow enough for seven columns in 80 (the report keeps 3 decimals)."""
    if not (np.isfinite(mean) and np.isfinite(std)):
        return _mean_std(mean, std)
    return f"{mean:.3f}±{std:.2f}"


def print_heads_table(heads: dict[str, MultiLabelCV | Any], console) -> None:
    """Heads side by side on the same folds (any task: each CV exposes mean/std log loss)."""
    from rich.table import Table

    table = Table(title="classifier heads, same folds (out-of-fold)")
    table.add_column("head", justify="left")
    for name in head_metric_names(heads):
        table.add_column(name.replace("_", " "), justify="right")
    for head, cv in heads.items():
        table.add_row(head, *(_mean_std(cv.mean[n], cv.std[n]) for n in head_metric_names(heads)))
    console.print(table)


def head_metric_names(heads: dict) -> list[str]:
    first = next(iter(heads.values()))
    return [name for name in first.mean if all(name in cv.mean for cv in heads.values())]


# --- plots ---------------------------------------------------------------------------------


def plot_multilabel_roc(cv: MultiLabelCV) -> bytes:
    from sklearn.metrics import auc, roc_curve

    figure, axes = _figure(1, 1, (5.5, 5))
    ax = axes[0]
    for k, label in enumerate(cv.labels):
        truth = cv.y[:, k]
        if truth.min() == truth.max():
            continue
        fpr, tpr, _ = roc_curve(truth, cv.oof_probabilities[:, k])
        ax.plot(fpr, tpr, label=f"{label} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC per label, out-of-fold")
    ax.legend(loc="lower right")
    return _png(figure)


def plot_multilabel_folds(cv: MultiLabelCV) -> bytes:
    figure, axes = _figure(1, 2, (11, 4))
    names = [n for n in SET_METRICS if n != "log_loss"]
    x = np.arange(len(names))
    width = 0.8 / max(1, cv.folds)
    for i, fold in enumerate(cv.fold_metrics):
        axes[0].bar(x + i * width, [fold[n] for n in names], width, label=f"fold {fold['fold']}")
    axes[0].set_xticks(x + width * (cv.folds - 1) / 2, [SET_TITLES[n] for n in names])
    axes[0].set(ylim=(0, 1), title="set metrics per fold")
    axes[0].legend(fontsize=7)
    x = np.arange(len(cv.labels))
    means = [cv.per_label[label]["f1"]["mean"] for label in cv.labels]
    stds = [cv.per_label[label]["f1"]["std"] for label in cv.labels]
    axes[1].bar(x, means, yerr=stds, capsize=4)
    axes[1].set_xticks(x, cv.labels)
    axes[1].set(ylim=(0, 1), title="F1 per label (mean ± std over folds)")
    return _png(figure)


def plot_heads(heads: dict[str, Any]) -> bytes:
    figure, axes = _figure(1, 1, (6, 4))
    names = list(heads)
    values = [heads[h].mean["log_loss"] for h in names]
    errors = [heads[h].std["log_loss"] for h in names]
    axes[0].bar(names, values, yerr=errors, capsize=4)
    axes[0].set(ylabel="out-of-fold log loss (lower is better)", title="classifier heads, same folds")
    return _png(figure)


def heads_html(heads: dict[str, Any], reason: str) -> str:
    names = head_metric_names(heads)
    rows = [[h, *(_mean_std(c.mean[n], c.std[n]) for n in names)] for h, c in heads.items()]
    return (
        "<h2>Classifier heads (same folds)</h2>"
        + _rows_table(["head", *names], rows)
        + f"<p>{html.escape(reason)}</p><img class='plot' src='{HEADS_PNG}' alt='heads'>"
    )


def add_heads_to_report(out_dir: Path, heads: dict[str, Any], reason: str) -> None:
    """Binary/multiclass: the heads side by side, added to the report training.report.write wrote."""
    out_dir = Path(out_dir)
    _write_atomic(out_dir / HEADS_PNG, plot_heads(heads))
    report = json.loads((out_dir / REPORT_JSON).read_text())
    report["heads"] = {name: {"mean": h.mean, "std": h.std} for name, h in heads.items()}
    report["head_choice"] = reason
    _write_atomic(out_dir / REPORT_JSON, (json.dumps(_json_safe(report), indent=2) + "\n").encode())
    page = (out_dir / REPORT_HTML).read_text()
    page = page.replace("</body>", heads_html(heads, reason) + "</body>", 1)
    _write_atomic(out_dir / REPORT_HTML, page.encode())


# --- files ---------------------------------------------------------------------------------


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
        _write_atomic(out_dir / name, payload)
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
    _write_atomic(out_dir / REPORT_JSON, (json.dumps(_json_safe(report), indent=2) + "\n").encode())
    _write_atomic(out_dir / REPORT_HTML, _render(cv, report, list(plots), heads or {}).encode())
    return MultiLabelReportPaths(out_dir / REPORT_JSON, out_dir / REPORT_HTML, [out_dir / n for n in plots])


def _render(cv: MultiLabelCV, report: dict[str, Any], plots: list[str], heads: dict[str, Any]) -> str:
    e = html.escape
    folds = _rows_table(
        ["fold", "frames", *(SET_TITLES[n] for n in SET_METRICS)],
        [[f["fold"], f["n_valid"], *(_fmt(f[n]) for n in SET_METRICS)] for f in cv.fold_metrics]
        + [["mean ± std", len(cv.y), *(_mean_std(cv.mean[n], cv.std[n]) for n in SET_METRICS)]],
    )
    per_label = _rows_table(
        ["label", "frames", "precision", "recall", "F1", "ROC-AUC", "threshold"],
        [
            [
                label,
                int(cv.y[:, k].sum()),
                *(
                    _mean_std(cv.per_label[label][n]["mean"], cv.per_label[label][n]["std"])
                    for n in PER_LABEL_METRICS
                ),
                f"{cv.thresholds[label]:.3f}",
            ]
            for k, label in enumerate(cv.labels)
        ],
    )
    heads_section = heads_html(heads, report["head_choice"]) if len(heads) > 1 else ""
    guard = report["int8_guard"]
    images = "".join(f"<img class='plot' src='{e(name)}' alt='{e(name)}'>" for name in plots)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>camsort multi-label report</title>
<style>{_STYLE}</style></head><body>
<h1>camsort multi-label model</h1>
<p>labels: {e(", ".join(cv.labels))}; {len(cv.y)} frames; head: {e(cv.head)}</p>
<p>{e(cv.fold_strategy)}. Per-fold precision/recall/F1 use thresholds chosen on the other folds'
out-of-fold predictions; the shipped thresholds maximise each label's F1 on all out-of-fold predictions.</p>
<h2>Set metrics per fold</h2>{folds}
<h2>Per label, mean ± std over folds</h2>{per_label}
{heads_section}
<h2>Plots</h2>{images}
<h2>Training set</h2>{_kv_table(report["dataset"].get("per_label_set"))}{_kv_table(report["near_duplicates"])}
<h2>int8 guard</h2>{_kv_table(guard) if guard else "<p>not run (fp32 requested)</p>"}
<h2>Parity</h2>{_kv_table({k: _fmt(v) for k, v in (report["parity"] or {}).items()})}
</body></html>
"""


def add_fine_tuning_to_report(
    out_dir: Path, frozen: MultiLabelCV, tuned: MultiLabelCV, decision: str
) -> None:
    """Frozen and fine-tuned side by side (same frames, same folds), added to the multi-label report."""
    out_dir = Path(out_dir)
    _write_atomic(out_dir / "roc-frozen.png", plot_multilabel_roc(frozen))
    report = json.loads((out_dir / REPORT_JSON).read_text())
    report["frozen"] = frozen.to_dict()
    report["fine_tuning_decision"] = decision
    _write_atomic(out_dir / REPORT_JSON, (json.dumps(_json_safe(report), indent=2) + "\n").encode())
    runs = {"frozen": frozen, "fine-tuned (cross-fitted)": tuned}
    names = head_metric_names(runs)
    side_by_side = _rows_table(
        ["run", *names], [[r, *(_mean_std(c.mean[n], c.std[n]) for n in names)] for r, c in runs.items()]
    )
    per_label = _rows_table(
        ["label", *(f"F1 {r}" for r in runs), *(f"ROC-AUC {r}" for r in runs)],
        [
            [
                label,
                *(
                    _mean_std(c.per_label[label]["f1"]["mean"], c.per_label[label]["f1"]["std"])
                    for c in runs.values()
                ),
                *(
                    _mean_std(c.per_label[label]["roc_auc"]["mean"], c.per_label[label]["roc_auc"]["std"])
                    for c in runs.values()
                ),
            ]
            for label in tuned.labels
        ],
    )
    section = (
        "<h2>Frozen vs fine-tuned, the same frames and folds</h2>"
        f"<p>{html.escape(decision)}</p>{side_by_side}{per_label}"
        "<img class='plot' src='roc-frozen.png' alt='ROC, frozen'>"
    )
    page = (out_dir / REPORT_HTML).read_text().replace("</body>", section + "</body>", 1)
    _write_atomic(out_dir / REPORT_HTML, page.encode())


def print_frozen_vs_tuned(frozen: MultiLabelCV, tuned: MultiLabelCV, console, *, title: str) -> None:
    from rich.table import Table

    runs = {"frozen": frozen, "fine-tuned (cross-fitted)": tuned}
    table = Table(title=title)
    table.add_column("")
    for run in runs:
        table.add_column(run, justify="right")
    for name in head_metric_names(runs):
        table.add_row(name.replace("_", " "), *(_mean_std(c.mean[name], c.std[name]) for c in runs.values()))
    table.add_section()
    for label in tuned.labels:
        table.add_row(
            f"{label}: F1",
            *(
                _mean_std(c.per_label[label]["f1"]["mean"], c.per_label[label]["f1"]["std"])
                for c in runs.values()
            ),
        )
    console.print(table)
