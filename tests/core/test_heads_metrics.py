"""Metrics and calibration against hand-computed cases."""

from __future__ import annotations

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
    softmax,
)


def test_auroc_counts_ordered_pairs_and_half_ties() -> None:
    assert auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert auroc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert auroc([0, 0, 1], [0.2, 0.5, 0.5]) == pytest.approx(0.75)  # one win, one tie
    assert auroc([1, 1, 0], [0.9, 0.8, 0.1]) == 1.0
    assert auroc([1, 1], [0.2, 0.3]) is None


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


def test_ece_of_hand_made_bins() -> None:
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.4, 0.6]])
    y = np.array([0, 1, 1, 1])
    # bin (0.8, 0.9]: confidence 0.9, accuracy 0.5; bin (0.5, 0.6]: confidence 0.6, accuracy 1
    assert expected_calibration_error(y, probs) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    assert expected_calibration_error(np.array([0]), np.array([[1.0, 0.0]])) == 0.0


def test_temperature_undoes_overconfident_logits() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(4000, 3)) * 1.5
    y = np.array([rng.choice(3, p=p) for p in softmax(true_logits)])
    t = fit_temperature(true_logits * 3.0, y)
    assert t == pytest.approx(3.0, rel=0.1)
    report = classification_report(y, true_logits * 3.0, "ordinal", t)
    assert report["ece_calibrated"] < report["ece"]
    assert report["nll_calibrated"] < report["nll"]
    assert {"auroc", "balanced_accuracy", "f1_macro", "mae"} <= set(report)
