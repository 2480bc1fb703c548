"""Yardstick metrics on hand-computed cases: AUROC with ties, AUPRO, top-box hits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skelex_desktop.core.heads.metrics import auroc as head_auroc
from skelex_desktop.core.inference.yardstick import (
    aupro,
    auroc_against,
    box_hits,
    hit_rate,
    patch_size_bin,
    patches_spanned,
    pro_curve,
)
from skelex_desktop.core.stats import auroc, midranks


def test_midranks_share_tied_ranks() -> None:
    assert midranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_auroc_hand_computed_with_ties() -> None:
    # positives 0.8, 0.4; negatives 0.4, 0.1, 0.6.
    # 0.8 beats all 3 negatives; 0.4 beats 0.1, ties 0.4 (half), loses to 0.6 -> 1.5
    # AUROC = (3 + 1.5) / (2 * 3) = 0.75
    scores = np.array([0.8, 0.4, 0.4, 0.1, 0.6])
    labels = np.array([True, True, False, False, False])
    assert auroc(scores, labels) == pytest.approx(0.75)
    assert auroc_against(np.sort(scores[~labels]), scores[labels]) == pytest.approx(0.75)


def test_auroc_extremes_and_missing_class() -> None:
    assert auroc(np.array([2.0, 1.0]), np.array([True, False])) == 1.0
    assert auroc(np.array([1.0, 2.0]), np.array([True, False])) == 0.0
    assert auroc(np.ones(4), np.array([True, False, True, False])) == 0.5
    assert math.isnan(auroc(np.ones(3), np.zeros(3, bool)))
    assert math.isnan(auroc_against(np.array([]), np.array([1.0])))


def test_auroc_variants_agree_on_random_ties() -> None:
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 20, 500).astype(float)
    labels = rng.random(500) < 0.3
    a = auroc(scores, labels)
    assert a == pytest.approx(head_auroc(labels, scores))
    assert a == pytest.approx(auroc_against(np.sort(scores[~labels]), scores[labels]))


def test_pro_curve_hand_computed() -> None:
    # negatives 0.9, 0.5, 0.3, 0.1 (FPR steps of 0.25); region A = [0.95, 0.4], B = [0.7]
    fpr, pro = pro_curve(np.array([0.9, 0.5, 0.3, 0.1]), [np.array([0.95, 0.4]), np.array([0.7])])
    # thresholds falling: 0.95 (A half), 0.9 (neg), 0.7 (B), 0.5 (neg), 0.4 (A), 0.3, 0.1
    assert fpr.tolist() == pytest.approx([0, 0, 0.25, 0.25, 0.5, 0.5, 0.75, 1.0])
    assert pro.tolist() == pytest.approx([0, 0.25, 0.25, 0.75, 0.75, 1.0, 1.0, 1.0])


def test_aupro_hand_computed() -> None:
    neg = np.array([0.9, 0.5, 0.3, 0.1])
    regions = [np.array([0.95, 0.4]), np.array([0.7])]
    # up to FPR 0.25: PRO is 0.25 from FPR 0 to 0.25 -> area 0.0625, / 0.25 = 0.25
    assert aupro(neg, regions, max_fpr=0.25) == pytest.approx(0.25)
    # up to 0.3: + 0.05 * 0.75 -> 0.1 / 0.3
    assert aupro(neg, regions, max_fpr=0.3) == pytest.approx((0.0625 + 0.0375) / 0.3)
    # whole curve: 0.0625 + 0.25 * 0.75 + 0.25 * 1 + 0.25 * 1 = 0.75
    assert aupro(neg, regions, max_fpr=1.0) == pytest.approx(0.75)


def test_aupro_perfect_and_unrelated_maps() -> None:
    rng = np.random.default_rng(0)
    neg = rng.random(20000)
    assert aupro(neg, [np.full(5, 2.0), np.full(50, 3.0)]) == pytest.approx(1.0)
    unrelated = aupro(neg, [rng.random(3000), rng.random(300)])
    assert unrelated == pytest.approx(0.15, abs=0.02)  # PRO = FPR: max_fpr / 2
    with pytest.raises(ValueError):
        aupro(neg, [])
    with pytest.raises(ValueError):
        aupro(neg, [np.ones(3)], max_fpr=0.0)


def test_regions_weigh_equally_whatever_their_size() -> None:
    neg = np.linspace(0.0, 1.0, 101)
    big_found = [np.full(1000, 5.0), np.full(1, -1.0)]
    # one region found at once, the other never: PRO 0.5 all along
    assert aupro(neg, big_found, max_fpr=0.3) == pytest.approx(0.5)


def test_box_hits_and_hit_rate() -> None:
    mask = np.zeros((10, 10), bool)
    mask[4, 6] = True
    assert box_hits((6, 4, 7, 5), mask)
    assert box_hits((0, 0, 10, 10, 0.9), mask)
    assert not box_hits((0, 0, 6, 10), mask)  # x1 exclusive
    assert not box_hits((6, 5, 9, 9), mask)
    assert not box_hits((-5, -5, 0, 0), mask)
    assert hit_rate([True, False, True, True]) == 0.75
    assert math.isnan(hit_rate([]))


def test_patches_spanned_takes_the_larger_side_in_model_patches() -> None:
    mask = np.zeros((512, 512), bool)
    mask[100:130, 200:264] = True  # 30 rows x 64 columns at source resolution
    # 224 model px over 512 source px: 64 * 0.4375 = 28 model px = 1.75 patches of 16
    scale = (224 / 512, 224 / 512)
    assert patches_spanned(mask, scale, 16) == pytest.approx(1.75)
    assert patch_size_bin(1.75) == "1-2 patches"
    assert patches_spanned(np.zeros((4, 4), bool), scale, 16) == 0.0


def test_patch_size_bins_have_inclusive_edges_at_one_and_two() -> None:
    assert [patch_size_bin(v) for v in (0.2, 0.999, 1.0, 2.0, 2.01, 9.0)] == [
        "< 1 patch",
        "< 1 patch",
        "1-2 patches",
        "1-2 patches",
        "> 2 patches",
        "> 2 patches",
    ]
