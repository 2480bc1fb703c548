"""The exposed field of a radiograph: collimator blades, the image border band and burned-in
markers, found on the 8-bit model input (numpy + OpenCV, no Qt).

A collimator blade leaves a bright (unexposed, MONOCHROME2) band along a side of the image
whose inner edge is a straight line, possibly a few degrees off the axis. Per side, every row
(or column) gives the position of its strongest bright-to-dark step going inward, counted only
where the band outside it is brighter than Otsu's level; a robust line fit through those
positions is a blade when it runs along most of the side and is nearly parallel to it. A limb
that touches the border gives no such line (its edges are curved, dark-to-bright going inward,
or span only part of the side), so uncollimated images keep their anatomy.

Markers: small saturated components (the lead L/R letter, burned-in text) lying in air.

`detect_field(gray)` returns all of it; `usable` is what the anatomy mask, hotspots, the image
score and the calibrations may use: inside every blade by `margin` pixels, off the image
border by `border` pixels, away from markers by `margin` pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REFERENCE_SIZE = 224  # margins below are in pixels of a 224 px image, scaled with the size
FIELD_MARGIN = 8.0  # half a ViT/16 patch inside a blade edge
BORDER_BAND = 4.0  # the image border (and its corners): reconstructions are worst there
MARKER_MARGIN = 3.0
STEP_HALF_WIDTH = 3  # pixels averaged on either side of a candidate step
MIN_STEP = 24.0  # grey levels (of 255) a blade edge must drop by, going inward
MIN_COVERAGE = 0.6  # share of the side a blade's inlying positions must span
MAX_TILT = 0.18  # tan of the largest blade angle accepted (~10 degrees)
SEARCH_DEPTH = 0.45  # blades are looked for in this outer share of each side
MARKER_MAX_SHARE = 0.003  # a marker covers at most this share of the image
MARKER_LEVEL = 240  # saturated in the 8-bit input


@dataclass(frozen=True)
class Blade:
    """A collimator edge on one side ("left", "top", "right", "bottom"): in that side's own
    frame (the side rotated to the left), the edge is at depth `offset + slope * t` pixels from
    the side at position t along it; `coverage` is the share of the side supporting it."""

    side: str
    offset: float
    slope: float
    coverage: float


@dataclass(frozen=True)
class ExposedField:
    """bool masks of the image's shape: `field` inside every blade (the whole image without
    blades), `markers` the marker pixels, `usable` the part that counts (see module doc)."""

    field: np.ndarray
    usable: np.ndarray
    markers: np.ndarray
    blades: tuple[Blade, ...]


SIDES = ("left", "top", "right", "bottom")  # np.rot90 turns (k) that bring each to the left


def _scale(gray: np.ndarray) -> float:
    return max(gray.shape[:2]) / REFERENCE_SIZE


def _otsu(values: np.ndarray) -> float:
    import cv2

    level, _ = cv2.threshold(
        np.ascontiguousarray(values, np.uint8).reshape(-1, 1),
        0,
        255,
        cv2.THRESH_BINARY + cv2.THRESH_OTSU,
    )
    return float(level)


def _fit_blade(view: np.ndarray, bright: float, scale: float) -> tuple[float, float, float] | None:
    """(offset, slope, coverage) of a blade along the left side of `view` (smoothed float
    image), or None."""
    rows, cols = view.shape
    w = max(1, round(STEP_HALF_WIDTH * scale))
    depth = max(2 * w + 2, int(cols * SEARCH_DEPTH))
    csum = np.concatenate([np.zeros((rows, 1), np.float32), np.cumsum(view, axis=1)], axis=1)
    xs = np.arange(w, depth - w)
    outer = (csum[:, xs] - csum[:, xs - w]) / w  # mean of the w pixels before x
    inner = (csum[:, xs + w] - csum[:, xs]) / w  # mean of the w pixels from x
    band = csum[:, xs] / xs  # mean of everything between the side and x
    step = np.where(band >= bright, outer - inner, -np.inf)
    best = np.argmax(step, axis=1)
    strength = step[np.arange(rows), best]
    ok = strength >= MIN_STEP
    if ok.sum() < MIN_COVERAGE * rows:
        return None
    t = np.flatnonzero(ok).astype(np.float64)
    x = xs[best[ok]].astype(np.float64)
    inl = np.abs(x - np.median(x)) <= MAX_TILT * rows / 2 + w
    slope, offset = 0.0, float(np.median(x))
    for tol in (2.0 * w, 1.5 * scale + 1.0, 1.5 * scale + 1.0):
        if inl.sum() < 2:
            return None
        slope, offset = (float(v) for v in np.polyfit(t[inl], x[inl], 1))
        inl = np.abs(x - (offset + slope * t)) <= tol
    coverage = float(inl.sum()) / rows
    if coverage < MIN_COVERAGE or abs(slope) > MAX_TILT:
        return None
    ends = offset, offset + slope * (rows - 1)
    if max(ends) < w:  # at the very border: that is the border band's business
        return None
    return offset, slope, coverage


def _inside(shape: tuple[int, int], side: str, offset: float, slope: float) -> np.ndarray:
    """bool: pixels beyond `offset + slope * t` from `side`, in the image's own frame."""
    k = SIDES.index(side)
    rows, cols = np.rot90(np.empty(shape, bool), k).shape
    t = np.arange(rows, dtype=np.float64)[:, None]
    depth = np.arange(cols, dtype=np.float64)[None, :] + 0.5
    return np.rot90(depth >= offset + slope * t, -k)


def find_markers(gray: np.ndarray, air_level: float) -> np.ndarray:
    """bool: small saturated components whose surroundings are mostly air (below
    `air_level`): lead side markers and burned-in text, not implants (those lie on bone)."""
    import cv2

    hot = (gray >= MARKER_LEVEL).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(hot, connectivity=8)
    markers = np.zeros(gray.shape, bool)
    ring_kernel = np.ones((7, 7), np.uint8)
    for label in range(1, count):
        x, y, w, h, area = (int(v) for v in stats[label])
        if area > MARKER_MAX_SHARE * gray.size:
            continue
        x0, y0 = max(0, x - 4), max(0, y - 4)
        x1, y1 = min(gray.shape[1], x + w + 4), min(gray.shape[0], y + h + 4)
        piece = (labels[y0:y1, x0:x1] == label).astype(np.uint8)
        ring = (cv2.dilate(piece, ring_kernel) > 0) & (hot[y0:y1, x0:x1] == 0)
        if ring.any() and float(np.median(gray[y0:y1, x0:x1][ring])) < air_level:
            markers[y0:y1, x0:x1] |= piece > 0
    return markers


def detect_field(
    gray: np.ndarray,
    margin: float = FIELD_MARGIN,
    border: float = BORDER_BAND,
    marker_margin: float = MARKER_MARGIN,
) -> ExposedField:
    """The exposed field of an 8-bit gray image (bone bright); margins in pixels of a 224 px
    image (scaled with the image's longer side)."""
    import cv2

    gray = np.ascontiguousarray(gray, np.uint8)
    scale = _scale(gray)
    smooth = cv2.GaussianBlur(gray.astype(np.float32), (0, 0), 1.5 * scale)
    level = _otsu(gray)
    blades: list[Blade] = []
    field = np.ones(gray.shape, bool)
    usable = np.ones(gray.shape, bool)
    for k, side in enumerate(SIDES):
        fit = _fit_blade(np.ascontiguousarray(np.rot90(smooth, k)), level, scale)
        if fit is None:
            continue
        offset, slope, coverage = fit
        blades.append(Blade(side, offset, slope, coverage))
        field &= _inside(gray.shape, side, offset, slope)
        usable &= _inside(gray.shape, side, offset + margin * scale, slope)
    b = int(round(border * scale))
    if b > 0:
        usable[:b] = usable[-b:] = False
        usable[:, :b] = usable[:, -b:] = False
    inside = gray[field]
    air = inside[inside <= _otsu(inside)] if inside.size else inside
    air_level = (float(np.median(air)) + level) / 2 if air.size else level
    markers = find_markers(gray, air_level)
    if markers.any():
        m = max(1, round(marker_margin * scale))
        near = cv2.dilate(markers.astype(np.uint8), np.ones((2 * m + 1, 2 * m + 1), np.uint8))
        usable &= near == 0
    return ExposedField(field, usable & field, markers, tuple(blades))
