"""The training report's plots (matplotlib, Agg backend): ROC, confusion, calibration, per fold."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from training.fit.crossval import CVResult, MultiLabelCV
from training.fit.metrics import SET_METRICS
from training.report.formatting import METRIC_TITLES, SET_TITLES


def plot_roc(cv: CVResult) -> bytes:
    # Binary: the positive class (the second label) only; its complement is the same curve.
    classes = [1] if cv.task == "binary" else range(len(cv.labels))
    curves = [(cv.labels[k], (cv.y == k).astype(int), cv.oof_probabilities[:, k]) for k in classes]
    return roc_plot(curves, "ROC, out-of-fold (one vs rest)")


def roc_plot(curves: list[tuple[str, np.ndarray, np.ndarray]], title: str) -> bytes:
    """One ROC curve per (name, truth 0/1, scores); a curve with no positives or no negatives is skipped."""
    from sklearn.metrics import auc, roc_curve

    figure, axes = new_figure(1, 1, (5.5, 5))
    ax = axes[0]
    for name, truth, scores in curves:
        if truth.min() == truth.max():
            continue
        fpr, tpr, _ = roc_curve(truth, scores)
        ax.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right")
    return png_bytes(figure)


def plot_confusion(cv: CVResult) -> bytes:
    counts = np.array(cv.pooled["confusion"], dtype=np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = counts / counts.sum(axis=1, keepdims=True)
    normalised = np.nan_to_num(normalised)
    size = 3 + 0.6 * len(cv.labels)
    figure, axes = new_figure(1, 2, (2 * size, size))
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
    return png_bytes(figure)


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
    figure, axes = new_figure(1, 1, (5.5, 5))
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
    return png_bytes(figure)


def plot_per_fold(cv: CVResult) -> bytes:
    names = ("accuracy", "balanced_accuracy", "roc_auc")
    figure, axes = new_figure(1, 1, (6, 4))
    ax = axes[0]
    folds = [fold.fold for fold in cv.fold_metrics]
    for name in names:
        ax.plot(
            folds, [getattr(fold, name) for fold in cv.fold_metrics], marker="o", label=METRIC_TITLES[name]
        )
    ax.set_xticks(folds)
    ax.set(xlabel="fold", ylabel="score", ylim=(0, 1.02), title="per-fold validation scores")
    ax.legend(loc="lower right")
    return png_bytes(figure)


def new_figure(rows: int, cols: int, size: tuple[float, float]):
    import matplotlib

    matplotlib.use("Agg")  # files only, never a display
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(rows, cols, figsize=size, squeeze=False)
    return figure, list(axes.ravel())


def png_bytes(figure) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


# --- label sets and heads ----------------------------------------------------------------------


def plot_multilabel_roc(cv: MultiLabelCV) -> bytes:
    curves = [(label, cv.y[:, k], cv.oof_probabilities[:, k]) for k, label in enumerate(cv.labels)]
    return roc_plot(curves, "ROC per label, out-of-fold")


def plot_multilabel_folds(cv: MultiLabelCV) -> bytes:
    figure, axes = new_figure(1, 2, (11, 4))
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
    return png_bytes(figure)


def plot_heads(heads: dict[str, Any]) -> bytes:
    figure, axes = new_figure(1, 1, (6, 4))
    names = list(heads)
    values = [heads[h].mean["log_loss"] for h in names]
    errors = [heads[h].std["log_loss"] for h in names]
    axes[0].bar(names, values, yerr=errors, capsize=4)
    axes[0].set(ylabel="out-of-fold log loss (lower is better)", title="classifier heads, same folds")
    return png_bytes(figure)
