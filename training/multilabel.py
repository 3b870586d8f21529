"""Multi-label cross-validation: one binary LightGBM per label on the same float32 features.

Folds: no library offers grouped multi-label stratification, so the folds stratify on the
label *combination* (the row of Y as a bit string) with ``StratifiedGroupKFold`` over the
near-duplicate groups. A combination held by fewer frames than there are folds cannot be
spread over every fold; such combinations are pooled into one stratum (``rare``), and when
even that pool is smaller than the number of folds it joins the most common combination.
``MultiLabelCV.fold_strategy`` says which combinations were pooled.

Thresholds: per label, the one that maximises that label's F1 on the out-of-fold
probabilities (ties: the lowest). The per-fold figures use, for each fold, thresholds chosen
on the *other* folds' OOF predictions, so a fold's labels never set its own threshold.

Metrics per fold (mean ± std over folds): per label precision, recall, F1, ROC-AUC; micro and
macro F1; subset accuracy (the whole set right); Hamming loss (share of wrong label bits);
mean binary log loss over the labels (the head-selection criterion).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.crossval import _progress_bar, resolve_params
from training.dataset import DatasetError
from training.metrics import finite
from training.thresholds import GUARD_MAX_AUC_DROP, GUARD_MIN_AGREEMENT, GuardResult

PER_LABEL_METRICS = ("precision", "recall", "f1", "roc_auc")
SET_METRICS = ("micro_f1", "macro_f1", "subset_accuracy", "hamming_loss", "log_loss")
RARE = "rare"


@dataclass
class MultiLabelCV:
    labels: list[str]
    folds: int
    seed: int
    params: dict[str, Any]
    head: str
    y: np.ndarray  # uint8 [N, L]
    fold_of: np.ndarray  # int [N]
    oof_probabilities: np.ndarray  # float32 [N, L], independent per label
    thresholds: dict[str, float]
    fold_metrics: list[dict[str, Any]]
    mean: dict[str, float]
    std: dict[str, float]
    per_label: dict[str, dict[str, dict[str, float]]]  # label -> metric -> {"mean", "std"}
    pooled: dict[str, Any]  # the metrics once on all OOF predictions at the shipped thresholds
    fold_strategy: str
    extra: dict[str, Any] = field(default_factory=dict)

    task = "multilabel"

    def predicted_sets(self) -> np.ndarray:
        return apply_thresholds(self.oof_probabilities, self.labels, self.thresholds)

    def summary(self) -> dict[str, Any]:
        return finite(
            {
                "task": "multilabel",
                "head": self.head,
                "folds": self.folds,
                "seed": self.seed,
                "grouping": self.fold_strategy,
                "mean": self.mean,
                "std": self.std,
                "per_label": self.per_label,
                "thresholds": "per label, max F1 on out-of-fold probabilities",
                "params": self.params,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "labels": self.labels,
            "fold_metrics": finite(self.fold_metrics),
            "pooled": finite(self.pooled),
            "threshold_values": self.thresholds,
            "y": self.y.tolist(),
            "fold_of": self.fold_of.tolist(),
            "oof_probabilities": self.oof_probabilities.round(6).tolist(),
        }


class MultiLabelHead:
    """One fitted binary model per label; ``predict_proba`` gives float32 [N, L] (column 1 of each)."""

    def __init__(self, models: list, labels: list[str], kind: str = "lightgbm"):
        self.models = models
        self.labels = list(labels)
        self.kind = kind
        self.n_features_in_ = models[0].n_features_in_

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        features = np.ascontiguousarray(features, dtype=np.float32)
        return np.stack([m.predict_proba(features)[:, 1] for m in self.models], axis=1).astype(np.float32)


# --- folds ------------------------------------------------------------------------------------


def combination_keys(y: np.ndarray) -> np.ndarray:
    """Each row of Y as a bit string: the label combination ("010" = the second label only)."""
    return np.array(["".join(map(str, row)) for row in np.asarray(y, dtype=np.uint8)])


def stratification_classes(y: np.ndarray, folds: int) -> tuple[np.ndarray, list[str]]:
    """The class StratifiedGroupKFold stratifies on, per frame, and the combinations pooled."""
    keys = combination_keys(y)
    counts = Counter(keys.tolist())
    rare = sorted(key for key, n in counts.items() if n < folds)
    strata = keys.astype(object)  # fixed-width strings would truncate "rare"
    if rare:
        strata[np.isin(keys, rare)] = RARE
        if sum(counts[key] for key in rare) < folds:
            common = max(
                (key for key in counts if key not in rare), key=lambda k: (counts[k], k), default=None
            )
            if common is not None:
                strata[strata == RARE] = common
    return strata, rare


def make_folds(
    y: np.ndarray, groups: np.ndarray, folds: int, seed: int, labels: list[str]
) -> tuple[np.ndarray, str]:
    """fold index per frame, and a sentence saying how the folds were made (and any fallback)."""
    from sklearn.model_selection import StratifiedGroupKFold

    strata, rare = stratification_classes(y, folds)
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    fold_of = np.full(len(y), -1, dtype=np.int64)
    for fold, (_, valid) in enumerate(splitter.split(np.zeros(len(y)), strata, groups)):
        fold_of[valid] = fold
    strategy = f"StratifiedGroupKFold ({folds} folds) over near-duplicate groups, stratified on the label combination"
    if rare:
        names = ", ".join(_combination_name(key, labels) for key in rare)
        strategy += (
            f"; fallback: combination(s) {names} have fewer than {folds} frames and were stratified together "
            "as one pooled class (or with the most common combination when the pool is smaller than the folds)"
        )
    return fold_of, strategy


def _combination_name(key: str, labels: list[str]) -> str:
    return "{" + ", ".join(label for label, bit in zip(labels, key, strict=True) if bit == "1") + "}"


# --- thresholds and metrics ----------------------------------------------------------------------


def best_f1_threshold(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """The threshold t (one of the observed float32 probabilities) maximising F1 of ``p >= t``."""
    p = np.asarray(probabilities, dtype=np.float32)
    truth = np.asarray(truth, dtype=bool)
    if not truth.any():
        return 1.0  # no positive frame: nothing supports ever saying this label
    order = np.argsort(-p, kind="stable")
    p_sorted, t_sorted = p[order], truth[order]
    tp = np.cumsum(t_sorted)
    accepted = np.arange(1, len(p) + 1)
    last_of_tie = np.r_[p_sorted[1:] != p_sorted[:-1], True]
    f1 = 2 * tp / (accepted + truth.sum())
    candidates = np.flatnonzero(last_of_tie)
    best = f1[candidates].max()
    i = int(candidates[np.flatnonzero(f1[candidates] == best)[-1]])
    return float(p_sorted[i])


def choose_multilabel_thresholds(
    probabilities: np.ndarray, y: np.ndarray, labels: list[str]
) -> dict[str, float]:
    return {label: best_f1_threshold(probabilities[:, k], y[:, k]) for k, label in enumerate(labels)}


def apply_thresholds(
    probabilities: np.ndarray, labels: list[str], thresholds: dict[str, float]
) -> np.ndarray:
    """uint8 [N, L]: the label set of each frame, as ``functions.frames.decision.decide_labels`` decides it."""
    from functions.frames.decision import decide_labels

    decisions = decide_labels(probabilities, labels, thresholds)
    return np.array([[label in d.labels for label in labels] for d in decisions], dtype=np.uint8).reshape(
        len(decisions), len(labels)
    )


def multilabel_metrics(
    y: np.ndarray, probabilities: np.ndarray, predicted: np.ndarray, labels: list[str]
) -> dict:
    from sklearn.metrics import (
        f1_score,
        hamming_loss,
        log_loss,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    y = np.asarray(y, dtype=np.uint8)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, average=None, zero_division=0
    )
    per_label = {}
    for k, label in enumerate(labels):
        auc = float(roc_auc_score(y[:, k], probabilities[:, k])) if len(np.unique(y[:, k])) == 2 else math.nan
        per_label[label] = {
            "precision": float(precision[k]),
            "recall": float(recall[k]),
            "f1": float(f1[k]),
            "roc_auc": auc,
            "support": int(support[k]),
        }
    clipped = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-7, 1 - 1e-7)
    losses = [log_loss(y[:, k], clipped[:, k], labels=[0, 1]) for k in range(len(labels))]
    return {
        "per_label": per_label,
        "micro_f1": float(f1_score(y, predicted, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(y, predicted, average="macro", zero_division=0)),
        "subset_accuracy": float((y == predicted).all(axis=1).mean()),
        "hamming_loss": float(hamming_loss(y, predicted)),
        "log_loss": float(np.mean(losses)),
    }


# --- cross-validation ------------------------------------------------------------------------


def fit_lightgbm_per_label(
    features: np.ndarray, y: np.ndarray, params: dict[str, Any] | None, seed: int
) -> list:
    """The shipped (or a fold's) LightGBMs: one binary classifier per column of Y."""
    from training.crossval import fit_final

    return [fit_final(features, y[:, k].astype(np.int64), params, seed) for k in range(y.shape[1])]


def cross_validate_multilabel(
    features: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    labels: list[str],
    *,
    folds: int = 5,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    fit=None,
    head: str = "lightgbm",
    fold_of: np.ndarray | None = None,
    progress: bool = True,
    fold_features: Callable[[int, np.ndarray], np.ndarray] | None = None,
) -> MultiLabelCV:
    """Grouped k-fold CV of one binary head per label. ``fit(features, Y, params, seed) -> [models]``
    (default: LightGBM); ``fold_of`` reuses given folds (every head on the same folds);
    ``fold_features(fold, train_idx) -> [N, F]``: each fold's own features (cross-fitting, as in
    ``training.crossval.cross_validate``)."""
    features = np.ascontiguousarray(features, dtype=np.float32)
    y = np.asarray(y, dtype=np.uint8)
    groups = np.asarray(groups)
    if features.ndim != 2 or y.ndim != 2 or not len(features) == len(y) == len(groups):
        raise ValueError(f"features {features.shape}, Y {y.shape}, groups {groups.shape} do not line up")
    if y.shape[1] != len(labels):
        raise ValueError(f"Y has {y.shape[1]} columns for {len(labels)} labels")
    fit = fit or fit_lightgbm_per_label
    params_resolved = resolve_params(params, seed) if head == "lightgbm" else dict(params or {})
    if fold_of is None:
        fold_of, strategy = make_folds(y, groups, folds, seed, labels)
    else:
        strategy = "the folds given (shared by every head)"
    folds = int(fold_of.max()) + 1

    oof = np.zeros(y.shape, dtype=np.float32)
    with _progress_bar(progress, f"cross-validation ({head}, {len(labels)} labels)", folds) as advance:
        for fold in range(folds):
            train, valid = fold_of != fold, fold_of == fold
            for k, label in enumerate(labels):
                if len(np.unique(y[train, k])) < 2:
                    raise DatasetError(
                        f"cross-validation fold {fold}: the training part has no frames "
                        f"{'without' if y[train, k].all() else 'with'} label {label!r}; add more distinct frames "
                        "or lower --folds"
                    )
            fold_x = features if fold_features is None else fold_features(fold, np.flatnonzero(train))
            models = fit(fold_x[train], y[train], params, seed)
            oof[valid] = MultiLabelHead(models, labels).predict_proba(fold_x[valid])
            advance()

    fold_metrics = []
    for fold in range(folds):
        valid = fold_of == fold
        # thresholds from the other folds' OOF predictions: this fold's labels do not set them
        others = choose_multilabel_thresholds(oof[~valid], y[~valid], labels)
        predicted = apply_thresholds(oof[valid], labels, others)
        fold_metrics.append(
            {
                "fold": fold,
                "n_valid": int(valid.sum()),
                **multilabel_metrics(y[valid], oof[valid], predicted, labels),
            }
        )
    thresholds = choose_multilabel_thresholds(oof, y, labels)
    mean, std, per_label = _aggregate(fold_metrics, labels)
    return MultiLabelCV(
        labels=list(labels),
        folds=folds,
        seed=seed,
        params=params_resolved,
        head=head,
        y=y,
        fold_of=fold_of,
        oof_probabilities=oof,
        thresholds=thresholds,
        fold_metrics=fold_metrics,
        mean=mean,
        std=std,
        per_label=per_label,
        pooled=multilabel_metrics(y, oof, apply_thresholds(oof, labels, thresholds), labels),
        fold_strategy=strategy,
    )


def _mean_std(values: list[float]) -> tuple[float, float]:
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    return (float(finite.mean()), float(finite.std())) if len(finite) else (math.nan, math.nan)


def _aggregate(fold_metrics: list[dict], labels: list[str]):
    mean, std = {}, {}
    for name in SET_METRICS:
        mean[name], std[name] = _mean_std([fold[name] for fold in fold_metrics])
    per_label: dict[str, dict[str, dict[str, float]]] = {}
    for label in labels:
        per_label[label] = {}
        for name in PER_LABEL_METRICS:
            m, s = _mean_std([fold["per_label"][label][name] for fold in fold_metrics])
            per_label[label][name] = {"mean": m, "std": s}
        per_label[label]["support"] = {
            "total": float(sum(fold["per_label"][label]["support"] for fold in fold_metrics))
        }
    return mean, std, per_label


def multilabel_guard(fp32: MultiLabelCV, int8: MultiLabelCV) -> GuardResult:
    """May the int8 backbone ship? Label sets (at the fp32 thresholds) must agree frame by frame,
    and the macro ROC-AUC over labels must not drop."""
    thresholds = fp32.thresholds
    sets_fp32 = apply_thresholds(fp32.oof_probabilities, fp32.labels, thresholds)
    sets_int8 = apply_thresholds(int8.oof_probabilities, int8.labels, thresholds)
    agreement = float((sets_fp32 == sets_int8).all(axis=1).mean())
    auc_fp32 = _macro_auc(fp32)
    auc_int8 = _macro_auc(int8)
    drop = auc_fp32 - auc_int8
    problems = []
    if agreement < GUARD_MIN_AGREEMENT:
        problems.append(
            f"int8 label sets equal fp32's on {agreement:.2%} of frames (< {GUARD_MIN_AGREEMENT:.1%})"
        )
    if not drop <= GUARD_MAX_AUC_DROP:
        problems.append(f"macro ROC-AUC drops by {drop:.4f} (> {GUARD_MAX_AUC_DROP})")
    reason = (
        f"int8 label sets equal fp32's on {agreement:.2%} of frames, macro ROC-AUC change {-drop:+.4f}"
        if not problems
        else "; ".join(problems)
    )
    return GuardResult(not problems, reason, agreement, auc_fp32, auc_int8, drop)


def _macro_auc(cv: MultiLabelCV) -> float:
    return float(np.nanmean([cv.pooled["per_label"][label]["roc_auc"] for label in cv.labels]))
