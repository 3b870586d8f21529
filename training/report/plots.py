"""The training report's plots (matplotlib, Agg backend): ROC, confusion, calibration, per fold."""

from __future__ import annotations

import io

import numpy as np

from training.fit.crossval import CVResult
from training.report.formatting import METRIC_TITLES


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
