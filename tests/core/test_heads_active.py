"""Active learning order on synthetic embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from skelex_desktop.core.heads.active import informative_order, uncertainty


def test_uncertainty_measures() -> None:
    probs = np.array([[0.5, 0.5], [0.9, 0.1], [1.0, 0.0]])
    assert uncertainty(probs) == pytest.approx([1.0, 0.469, 0.0], abs=1e-3)
    assert uncertainty(probs, "margin") == pytest.approx([1.0, 0.2, 0.0])
    with pytest.raises(ValueError, match="unknown uncertainty"):
        uncertainty(probs, "nope")


def test_uncertain_first_and_duplicates_spread_out() -> None:
    rng = np.random.default_rng(0)
    cluster = rng.normal(size=(5, 4)) * 0.01  # five near-duplicates, all uncertain
    far = rng.normal(size=(3, 4)) * 0.01 + 10.0
    x = np.vstack([cluster, far])
    p_uncertain = np.array([[0.5, 0.5]] * 5 + [[0.6, 0.4]] * 3)
    only_uncertainty = informative_order(p_uncertain, x, diversity=0.0)
    assert set(only_uncertainty[:5]) == set(range(5))
    diverse = informative_order(p_uncertain, x, diversity=0.5)
    assert diverse[0] < 5 and diverse[1] >= 5  # second pick leaves the cluster
    assert sorted(diverse) == list(range(8))


def test_labelled_neighbourhood_is_less_informative() -> None:
    x = np.array([[0.0, 0.0], [5.0, 5.0]])
    probs = np.array([[0.5, 0.5], [0.5, 0.5]])
    order = informative_order(probs, x, labelled=np.array([[0.1, 0.0]]), diversity=0.5)
    assert list(order) == [1, 0]
    assert list(informative_order(probs[:1], x[:1], limit=0)) == [0]
    assert len(informative_order(np.zeros((0, 2)), np.zeros((0, 2)))) == 0
