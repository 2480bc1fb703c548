"""Hotspots (thresholded connected regions of an error map) and the image-level anomaly score.

Threshold: a calibrated error value from the manifest when there is one, else a robust z-score
within the image: z = (e - median) / (1.4826 * MAD) over the foreground. Components smaller
than `min_area` pixels are dropped; each box is scored by the peak z inside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

MAD_TO_SIGMA = 1.4826
DEFAULT_Z = 3.5
SCORE_PERCENTILE = 99.0


@dataclass(frozen=True)
class Hotspot:
    """A box (x0, y0, x1, y1: inclusive-exclusive pixel edges) with its score and statistics."""

    x0: int
    y0: int
    x1: int
    y1: int
    score: float
    peak_error: float
    mean_error: float
    area: int

    def to_json(self) -> dict[str, float | int]:
        return asdict(self)


def robust_stats(values: np.ndarray) -> tuple[float, float]:
    """(median, robust sigma) of `values`; sigma never below a tiny positive floor."""
    if values.size == 0:
        return 0.0, 1e-12
    median = float(np.median(values))
    sigma = MAD_TO_SIGMA * float(np.median(np.abs(values - median)))
    if sigma <= 0:
        sigma = float(values.std()) or 1e-12
    return median, max(sigma, 1e-12)


def robust_z(error: np.ndarray, foreground: np.ndarray | None = None) -> np.ndarray:
    """The robust z-score map of `error`, statistics taken over `foreground` (or everything)."""
    values = error[foreground] if foreground is not None and foreground.any() else error.ravel()
    median, sigma = robust_stats(values)
    return ((error - median) / sigma).astype(np.float32)


def find_hotspots(
    error: np.ndarray,
    foreground: np.ndarray | None = None,
    z_threshold: float = DEFAULT_Z,
    threshold: float | None = None,
    min_area: int = 4,
    max_count: int = 20,
) -> list[Hotspot]:
    """Connected regions above the threshold, best first, in `error`'s pixel coordinates."""
    import cv2

    z = robust_z(error, foreground)
    hot = error > threshold if threshold is not None else z > z_threshold
    if foreground is not None and foreground.any():
        hot &= foreground
    count, labels, stats, _ = cv2.connectedComponentsWithStats(hot.astype(np.uint8), connectivity=8)
    spots: list[Hotspot] = []
    for label in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[label])
        if area < min_area:
            continue
        inside = labels[y : y + h, x : x + w] == label
        region = error[y : y + h, x : x + w][inside]
        spots.append(
            Hotspot(
                x,
                y,
                x + w,
                y + h,
                float(z[y : y + h, x : x + w][inside].max()),
                float(region.max()),
                float(region.mean()),
                area,
            )
        )
    spots.sort(key=lambda s: s.score, reverse=True)
    return spots[:max_count]


PointMap = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def scale_hotspots(
    spots: list[Hotspot], to_source_xy: PointMap, shape: tuple[int, int]
) -> list[Hotspot]:
    """Boxes from model space to full resolution: `to_source_xy(x, y)` maps pixel edges;
    boxes are widened to whole pixels and clipped to `shape` (rows, cols)."""
    rows, cols = shape
    out = []
    for s in spots:
        xs, ys = to_source_xy(np.array([s.x0, s.x1], float), np.array([s.y0, s.y1], float))
        x0, x1 = max(0, int(np.floor(xs[0]))), min(cols, int(np.ceil(xs[1])))
        y0, y1 = max(0, int(np.floor(ys[0]))), min(rows, int(np.ceil(ys[1])))
        if x1 > x0 and y1 > y0:
            scale = (xs[1] - xs[0]) / (s.x1 - s.x0) * (ys[1] - ys[0]) / (s.y1 - s.y0)
            area = int(round(s.area * scale))
            out.append(Hotspot(x0, y0, x1, y1, s.score, s.peak_error, s.mean_error, area))
    return out


def anomaly_score(
    error: np.ndarray, foreground: np.ndarray | None = None, percentile: float = SCORE_PERCENTILE
) -> float:
    """Image-level anomaly score: a high percentile of the error inside the foreground."""
    values = error[foreground] if foreground is not None and foreground.any() else error.ravel()
    return float(np.percentile(values, percentile)) if values.size else 0.0
