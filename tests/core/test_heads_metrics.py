"""Metrics and calibration (scikit-learn underneath) against hand-computed cases and against
our own rank AUROC of the reader edition (core.stats)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from skelex_desktop.core.heads.metrics import (
    auroc,
    balanced_accuracy,
    classification_report,
    expected_calibration_error,
    f1_macro,
    fit_temperature,
    macro_auroc_ovr,
    mean_absolute_error,
    negative_log_likelihood,
    reliability,
    softmax,
)
from skelex_desktop.core.stats import auroc as rank_auroc


def test_auroc_counts_ordered_pairs_and_half_ties() -> None:
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert auroc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert auroc([0, 0, 1], [0.2, 0.5, 0.5]) == pytest.approx(0.75)  # one win, one tie
    assert auroc([1, 1, 0], [0.9, 0.8, 0.1]) == 1.0
    assert auroc([1, 1], [0.2, 0.3]) is None
    assert auroc([0, 0], [0.2, 0.3]) is None


def test_auroc_agrees_with_the_reader_editions_rank_auroc() -> None:
    rng = np.random.default_rng(3)
    for n in (5, 50, 500):
        y = rng.integers(0, 2, n)
        y[:2] = (0, 1)
        s = np.round(rng.normal(size=n) + 0.7 * y, 1)  # rounded: many ties
        assert auroc(y, s) == pytest.approx(rank_auroc(s, y == 1), abs=1e-12)
    assert np.isnan(rank_auroc(np.array([0.2, 0.3]), np.array([True, True])))


def test_macro_auroc_averages_one_vs_rest() -> None:
    y = np.array([0, 1, 2])
    perfect = np.eye(3)
    assert macro_auroc_ovr(y, perfect) == 1.0
    probs = np.array([[0.2, 0.5, 0.3], [0.5, 0.2, 0.3], [0.3, 0.3, 0.4]])
    # class 0: 0.2 vs (0.5, 0.3) -> 0; class 1: 0.2 vs (0.5, 0.3) -> 0; class 2: 0.4 vs 0.3 -> 1
    assert macro_auroc_ovr(y, probs) == pytest.approx(1 / 3)


def test_balanced_accuracy_f1_and_mae() -> None:
    y = np.array([0, 0, 0, 1])
    p = np.array([0, 0, 1, 1])
    assert balanced_accuracy(y, p) == pytest.approx((2 / 3 + 1) / 2)
    # class 0: tp 2, fp 0, fn 1 -> 0.8; class 1: tp 1, fp 1, fn 0 -> 2/3
    assert f1_macro(y, p, 2) == pytest.approx((0.8 + 2 / 3) / 2)
    assert f1_macro(y, p, 3) == pytest.approx((0.8 + 2 / 3) / 2)  # absent class ignored
    assert mean_absolute_error([0, 2, 4], [1, 2, 2]) == pytest.approx(1.0)
    # a predicted class that no image has: its recall is not averaged, and no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert balanced_accuracy([0, 0, 1, 1], [0, 2, 1, 1]) == pytest.approx(0.75)
    # class 0: tp 1, fn 1 -> 2/3; class 1: 1; class 2: tp 0, fp 1 -> 0
    assert f1_macro([0, 0, 1, 1], [0, 2, 1, 1], 3) == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert f1_macro([0, 0, 1, 1], [0, 2, 1, 1], 2) == pytest.approx((2 / 3 + 1) / 2)


def test_ece_of_hand_made_bins() -> None:
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    y = np.array([0, 1, 1, 1])
    # bin (0.8, 0.9]: confidence 0.9, accuracy 0.5; bin (0.5, 0.6]: confidence 0.6, accuracy 1
    assert expected_calibration_error(y, probs) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    assert expected_calibration_error(np.array([0]), np.array([[1.0, 0.0]])) == 0.0
    conf, acc, counts = reliability(y, probs)
    assert counts.tolist() == [0, 0, 0, 0, 0, 2, 0, 0, 2, 0]
    assert conf[[5, 8]] == pytest.approx([0.6, 0.9]) and acc[[5, 8]] == pytest.approx([1, 0.5])
    assert np.isnan(conf[counts == 0]).all() and np.isnan(acc[counts == 0]).all()


def test_reliability_bins_sum_to_the_ece() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    probs = softmax(rng.normal(size=(300, 3)) + 1.5 * np.eye(3)[y])
    conf, acc, counts = reliability(y, probs)
    assert counts.sum() == len(y) and np.isnan(conf[:3]).all()  # 3 classes: confidence > 1/3
    top = probs.max(axis=1)
    for b in np.flatnonzero(counts):
        inside = (top > b / 10) & (top <= (b + 1) / 10)
        assert inside.sum() == counts[b] and conf[b] == pytest.approx(top[inside].mean())
        assert acc[b] == pytest.approx(np.mean(probs[inside].argmax(axis=1) == y[inside]))
    used = counts > 0
    ece = np.sum(counts[used] / len(y) * np.abs(acc[used] - conf[used]))
    assert expected_calibration_error(y, probs) == pytest.approx(ece, abs=1e-12)
    assert ece > 0.01


def test_nll_of_hand_made_probabilities() -> None:
    probs = np.array([[0.8, 0.2], [0.4, 0.6], [0.5, 0.5]])
    expected = -(np.log(0.8) + np.log(0.6) + np.log(0.5)) / 3
    assert negative_log_likelihood([0, 1, 1], probs) == pytest.approx(expected)
    # a class absent from the labels still counts as a column
    assert negative_log_likelihood([0, 0], probs[:2]) == pytest.approx(-np.log([0.8, 0.4]).mean())


def test_temperature_undoes_overconfident_logits() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(4000, 3)) * 1.5
    y = np.array([rng.choice(3, p=p) for p in softmax(true_logits)])
    t = fit_temperature(true_logits * 3.0, y)
    assert t == pytest.approx(3.0, rel=0.1)
    # the minimiser's T is the NLL minimum of a fine grid
    grid = np.exp(np.linspace(np.log(1.5), np.log(6.0), 400))
    nll = [negative_log_likelihood(y, softmax(true_logits * 3.0, g)) for g in grid]
    assert t == pytest.approx(grid[int(np.argmin(nll))], rel=0.01)
    report = classification_report(y, true_logits * 3.0, "ordinal", t)
    assert report["ece_calibrated"] < report["ece"]
    assert report["nll_calibrated"] < report["nll"]
    assert {"auroc", "balanced_accuracy", "f1_macro", "mae"} <= set(report)
