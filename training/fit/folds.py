"""Cross-validation folds: grouped by near-duplicates, stratified on the label (or label set).

Folds come from ``StratifiedGroupKFold``: near-duplicate frames share a group (see
``training.features.neardup``) and a group never straddles train and validation, so the figures
are not inflated by a frame being judged against its own twin.

Label sets: no library offers grouped multi-label stratification, so the folds stratify on the
label *combination* (the row of Y as a bit string). A combination held by fewer frames than
there are folds cannot be spread over every fold; such combinations are pooled into one stratum
(``rare``), and when even that pool is smaller than the number of folds it joins the most
common combination. ``make_folds`` says which combinations were pooled.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

RARE = "rare"


def grouped_folds(
    y: np.ndarray, groups: np.ndarray, *, folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, valid) indices of each fold: stratified on y, no near-duplicate group split.

    Depends only on (y, groups, folds, seed): every head, precision and fine-tuning run that
    asks gets the same folds.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y, groups))


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
