"""Patient-grouped, stratified k-fold assignment: no patient's images in two folds.

Greedy, like scikit-learn's StratifiedGroupKFold: patients are visited largest (and most
skewed) first, in a seeded random order among equals, and each goes to the fold whose class
counts stay closest to an even share of every class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class SplitError(ValueError):
    """The labels cannot be split into the requested folds; the message says why."""


def grouped_stratified_folds(
    y: Sequence[int] | np.ndarray, groups: Sequence[str] | np.ndarray, k: int, seed: int = 0
) -> np.ndarray:
    """Fold index [N] in 0..k-1 for each sample; samples of one group share a fold."""
    y_arr = np.asarray(y)
    g_arr = np.asarray(groups)
    if len(y_arr) != len(g_arr):
        raise SplitError("labels and patient groups differ in length")
    if k < 2:
        raise SplitError(f"cross-validation needs at least 2 folds, got {k}")
    names, group_index = np.unique(g_arr, return_inverse=True)
    if len(names) < k:
        raise SplitError(f"{len(names)} patient(s) cannot fill {k} folds; label more patients")
    classes, y_index = np.unique(y_arr, return_inverse=True)
    counts = np.zeros((len(names), len(classes)), np.int64)
    np.add.at(counts, (group_index, y_index), 1)
    rng = np.random.default_rng(seed)
    shuffle = rng.permutation(len(names))
    spread = counts.std(axis=1)
    order = sorted(shuffle, key=lambda g: (-counts[g].sum(), -spread[g]))
    totals = counts.sum(axis=0).astype(float)
    fold_counts = np.zeros((k, len(classes)))
    fold_of_group = np.empty(len(names), np.int64)
    for g in order:
        best, best_cost = 0, np.inf
        for f in range(k):
            trial = fold_counts.copy()
            trial[f] += counts[g]
            cost = float(np.mean(np.std(trial / totals, axis=0)))
            cost += 1e-9 * trial[f].sum()  # tie-break toward the smaller fold
            if cost < best_cost:
                best, best_cost = f, cost
        fold_of_group[g] = best
        fold_counts[best] += counts[g]
    return fold_of_group[group_index]
