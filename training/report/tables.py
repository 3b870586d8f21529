"""The training report on the terminal: cross-validation tables, heads and runs side by side.

Narrow tables rather than one wide one: they stay readable in an 80-column terminal.
"""

from __future__ import annotations

from typing import Any

from training.fit.crossval import CVResult, MultiLabelCV
from training.fit.metrics import PER_LABEL_METRICS, SCALAR_METRICS, SET_METRICS
from training.report.formatting import METRIC_TITLES, SET_TITLES, fmt, mean_std, short


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
        folds.add_row(str(fold["fold"]), str(fold["n_valid"]), *(fmt(fold[name]) for name in SET_METRICS))
    folds.add_section()
    folds.add_row(
        "mean±sd", str(len(cv.y)), *(short(cv.mean[n], cv.std[n]) for n in SET_METRICS), style="bold"
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
            *(short(figures[name]["mean"], figures[name]["std"]) for name in PER_LABEL_METRICS),
            f"{cv.thresholds[label]:.3f}",
        )
    console.print(per_label)
    console.print(f"folds: {cv.fold_strategy}")
    if heads:
        print_heads_table(heads, console)


def print_heads_table(heads: dict[str, MultiLabelCV | Any], console) -> None:
    """Heads side by side on the same folds (any task: each CV exposes mean/std log loss)."""
    from rich.table import Table

    table = Table(title="classifier heads, same folds (out-of-fold)")
    table.add_column("head", justify="left")
    for name in head_metric_names(heads):
        table.add_column(name.replace("_", " "), justify="right")
    for head, cv in heads.items():
        table.add_row(head, *(mean_std(cv.mean[n], cv.std[n]) for n in head_metric_names(heads)))
    console.print(table)


def head_metric_names(heads: dict) -> list[str]:
    first = next(iter(heads.values()))
    return [name for name in first.mean if all(name in cv.mean for cv in heads.values())]


def print_frozen_vs_tuned(frozen: MultiLabelCV, tuned: MultiLabelCV, console, *, title: str) -> None:
    from rich.table import Table

    runs = {"frozen": frozen, "fine-tuned (cross-fitted)": tuned}
    table = Table(title=title)
    table.add_column("")
    for run in runs:
        table.add_column(run, justify="right")
    for name in head_metric_names(runs):
        table.add_row(name.replace("_", " "), *(mean_std(c.mean[name], c.std[name]) for c in runs.values()))
    table.add_section()
    for label in tuned.labels:
        table.add_row(
            f"{label}: F1",
            *(
                mean_std(c.per_label[label]["f1"]["mean"], c.per_label[label]["f1"]["std"])
                for c in runs.values()
            ),
        )
    console.print(table)
