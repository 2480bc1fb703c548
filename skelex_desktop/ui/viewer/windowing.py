"""Window/level presets for radiographs, derived from the image's own value distribution.

Radiograph values are not Hounsfield units, so "bone" and "soft tissue" windows are relative:
bone spans the upper part of the histogram (where cortex and trabeculae separate), soft tissue
the lower part above the background.
"""

from __future__ import annotations

import numpy as np

Window = tuple[float, float]
_SAMPLE = 250_000


def _percentiles(values: np.ndarray, qs: list[float]) -> list[float]:
    step = max(1, int(np.sqrt(values.size / _SAMPLE)))
    sample = values[::step, ::step]
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return [0.0 for _ in qs]
    return [float(v) for v in np.percentile(finite, qs)]


def _span(low: float, high: float) -> Window:
    width = max(high - low, 1e-3)
    return (low + high) / 2.0, width


def window_presets(values: np.ndarray, default: Window) -> dict[str, Window]:
    """Named windows: `default` (from the file), `auto`, `bone`, `soft tissue`."""
    p1, p5, p40, p70, p995 = _percentiles(values, [1, 5, 40, 70, 99.5])
    return {
        "default": default,
        "auto": _span(p1, p995),
        "bone": _span(p40, p995),
        "soft tissue": _span(p5, p70),
    }


def drag_window(start: Window, dx: float, dy: float, value_range: float) -> Window:
    """Window after a right-drag of (dx, dy) pixels: right widens, down raises the level."""
    center, width = start
    sensitivity = max(value_range, 1e-3) / 512.0
    return center + dy * sensitivity, max(width + dx * sensitivity, value_range / 4096.0)
