"""Patient-grouped stratified folds."""

from __future__ import annotations

import numpy as np
import pytest

from skelex_desktop.core.heads.splits import SplitError, grouped_stratified_folds


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 5, size=60)
    groups = np.repeat([f"P{i}" for i in range(60)], sizes)
    y = (rng.random(len(groups)) < 0.3).astype(int)
    return y, groups


@pytest.mark.parametrize("k", [2, 3, 5])
def test_no_patient_in_two_folds_and_classes_spread(k: int) -> None:
    y, groups = _data()
    folds = grouped_stratified_folds(y, groups, k, seed=1)
    assert set(folds) == set(range(k))
    for g in np.unique(groups):
        assert len(set(folds[groups == g])) == 1
    share = [y[folds == f].mean() for f in range(k)]
    assert max(share) - min(share) < 0.15
    sizes = np.bincount(folds)
    assert sizes.min() > 0.6 * sizes.max()


def test_seeded_and_deterministic() -> None:
    y, groups = _data()
    a = grouped_stratified_folds(y, groups, 5, seed=3)
    assert np.array_equal(a, grouped_stratified_folds(y, groups, 5, seed=3))


def test_too_few_patients_and_bad_k_are_explained() -> None:
    with pytest.raises(SplitError, match="2 patient"):
        grouped_stratified_folds([0, 1, 0], ["a", "a", "b"], 3)
    with pytest.raises(SplitError, match="at least 2 folds"):
        grouped_stratified_folds([0, 1], ["a", "b"], 1)
