"""Localisation metrics for error maps (numpy only, no Qt): pixel AUROC, AUPRO, hit rate.

- `auroc(scores, labels)`: Mann-Whitney AUROC from mid-ranks (ties count one half).
- `auroc_against(sorted_negatives, positives)`: the same number when the negatives are large
  and shared by many comparisons (sorted once, each positive located by binary search).
- `aupro(negatives, regions, max_fpr)`: area under the per-region-overlap curve. At threshold
  t, FPR(t) = share of negative pixels with score >= t and PRO(t) = mean over ground-truth
  regions of the share of the region's pixels with score >= t; the curve (FPR, PRO) from
  (0, 0) is integrated with the trapezoid rule up to `max_fpr` (interpolated there) and
  divided by `max_fpr`: 1 = every region fully found before any false positive; a map
  unrelated to the findings (PRO = FPR) scores `max_fpr / 2`, i.e. 0.15 at max_fpr 0.3.
- `box_hits(box, mask)` / `hit_rate(hits)`: does a box (x0, y0, x1, y1, exclusive ends)
  cover at least one finding pixel; the share of images whose top box does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def auroc_against(sorted_negatives: np.ndarray, positives: np.ndarray) -> float:
    """AUROC of `positives` against already sorted (ascending) negatives; NaN if either is
    empty. Equal to `auroc` on the concatenation (ties count one half)."""
    neg = np.asarray(sorted_negatives).ravel()
    pos = np.asarray(positives, neg.dtype if neg.size else np.float64).ravel()
    if neg.size == 0 or pos.size == 0:
        return float("nan")
    below = np.searchsorted(neg, pos, side="left").astype(np.float64)
    upto = np.searchsorted(neg, pos, side="right").astype(np.float64)
    return float(((below + upto) / 2.0).sum() / (pos.size * neg.size))


def pro_curve(
    negatives: np.ndarray, regions: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, PRO) at every distinct threshold, from (0, 0) up to (1, 1), thresholds falling.

    `negatives`: scores of the pixels without a finding; `regions`: per ground-truth region
    (a connected component of a finding mask) the scores of its pixels.
    """
    regions = [np.asarray(r, np.float64).ravel() for r in regions if np.size(r)]
    neg = np.asarray(negatives, np.float64).ravel()
    if neg.size == 0 or not regions:
        raise ValueError("a PRO curve needs negative pixels and at least one region")
    pos = np.concatenate(regions)
    pos_weight = np.concatenate([np.full(r.size, 1.0 / (r.size * len(regions))) for r in regions])
    scores = np.concatenate([neg, pos])
    fpr_weight = np.concatenate([np.full(neg.size, 1.0 / neg.size), np.zeros(pos.size)])
    pro_weight = np.concatenate([np.zeros(neg.size), pos_weight])
    order = np.argsort(-scores, kind="stable")
    scores = scores[order]
    fpr = np.cumsum(fpr_weight[order])
    pro = np.cumsum(pro_weight[order])
    last_of_tie = np.r_[scores[1:] != scores[:-1], True]
    fpr = np.r_[0.0, np.minimum(fpr[last_of_tie], 1.0)]
    pro = np.r_[0.0, np.minimum(pro[last_of_tie], 1.0)]
    return fpr, pro


def aupro(negatives: np.ndarray, regions: Sequence[np.ndarray], max_fpr: float = 0.3) -> float:
    """Normalised area under the PRO curve for FPR in [0, max_fpr] (see the module doc)."""
    if not 0 < max_fpr <= 1:
        raise ValueError("max_fpr must lie in (0, 1]")
    fpr, pro = pro_curve(negatives, regions)
    keep = fpr <= max_fpr
    x, y = fpr[keep], pro[keep]
    if x[-1] < max_fpr:
        nxt = int(np.argmax(fpr > max_fpr))
        x0, x1, y0, y1 = fpr[nxt - 1], fpr[nxt], pro[nxt - 1], pro[nxt]
        y_end = y0 + (y1 - y0) * (max_fpr - x0) / (x1 - x0)
        x, y = np.r_[x, max_fpr], np.r_[y, y_end]
    area = float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))
    return area / max_fpr


def box_hits(box: Sequence[float], mask: np.ndarray) -> bool:
    """True when the box (x0, y0, x1, y1; x1, y1 exclusive) covers a True pixel of `mask`."""
    x0, y0, x1, y1 = (int(v) for v in box[:4])
    rows, cols = mask.shape
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(cols, x1), min(rows, y1)
    return bool(x1 > x0 and y1 > y0 and mask[y0:y1, x0:x1].any())


def hit_rate(hits: Sequence[bool]) -> float:
    """Share of True in `hits` (NaN when empty)."""
    return float(np.mean(np.asarray(hits, bool))) if len(hits) else float("nan")


PATCH_SIZE_BINS = ("< 1 patch", "1-2 patches", "> 2 patches")


def patches_spanned(mask: np.ndarray, model_per_source: tuple[float, float], patch: int) -> float:
    """The larger side of `mask`'s bounding box in model patches: a finding of 0.8 fits in one
    patch of the model's input, one of 3.0 spans three. `model_per_source` is (x, y) model
    pixels per source pixel; 0.0 for an empty mask."""
    rows, cols = np.nonzero(np.asarray(mask, bool))
    if rows.size == 0:
        return 0.0
    width = (int(cols.max()) - int(cols.min()) + 1) * model_per_source[0]
    height = (int(rows.max()) - int(rows.min()) + 1) * model_per_source[1]
    return float(max(width, height)) / patch


def patch_size_bin(patches: float) -> str:
    """`PATCH_SIZE_BINS` label of a size in patches: below 1, 1 to 2 (inclusive), above 2."""
    if patches < 1.0:
        return PATCH_SIZE_BINS[0]
    return PATCH_SIZE_BINS[1] if patches <= 2.0 else PATCH_SIZE_BINS[2]
