"""Turning radiograph values into Qt images: window/level, inversion, colour maps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PySide6.QtGui import QImage

from skelex_desktop.core.inference.errormap import anatomy_at
from skelex_desktop.core.ingest.frame import Frame, apply_window
from skelex_desktop.ui.viewer.windowing import Window, window_presets

OVERLAY_MAX_SIDE = 1024  # the map comes from a 224 px model: more pixels add nothing visible


def to_qimage(pixels: np.ndarray) -> QImage:
    """A deep-copied QImage of uint8 gray (H, W), RGB (H, W, 3) or RGBA (H, W, 4) pixels."""
    pixels = np.ascontiguousarray(pixels)
    h, w = pixels.shape[:2]
    formats = {2: QImage.Format.Format_Grayscale8, 3: QImage.Format.Format_RGB888}
    fmt = formats[2] if pixels.ndim == 2 else formats.get(pixels.shape[2])
    if fmt is None:
        fmt = QImage.Format.Format_RGBA8888
    return QImage(pixels.data, w, h, pixels.strides[0], fmt).copy()


def windowed_uint8(
    values: np.ndarray, center: float, width: float, invert: bool = False
) -> np.ndarray:
    """`values` at window (center, width) as uint8, bone bright unless `invert`."""
    unit = apply_window(values, center, width)
    if invert:
        unit = 1.0 - unit
    return (unit * 255.0 + 0.5).astype(np.uint8)


COLORMAPS = {"hot": 11, "inferno": 14, "jet": 2, "viridis": 16}  # OpenCV COLORMAP_* ids


def overlay_rgba(
    error_map: np.ndarray,
    colormap: str = "hot",
    opacity: float = 0.55,
    threshold: float = 0.0,
    scale: tuple[float, float] | None = None,
) -> np.ndarray:
    """An RGBA uint8 overlay of `error_map` on the colour scale `scale` (default: 0 to the
    99.5th percentile). With a threshold (0-1 of the scale) lower values are transparent;
    without one, near-zero error fades out."""
    import cv2

    low, high = scale if scale is not None else (0.0, float(np.nanpercentile(error_map, 99.5)))
    unit = (error_map.astype(np.float32) - np.float32(low)) * np.float32(
        1.0 / max(high - low, 1e-12)
    )
    np.clip(unit, 0.0, 1.0, out=unit)
    level = (np.nan_to_num(unit, copy=False) * 255.0).astype(np.uint8)
    rgba = cv2.cvtColor(cv2.applyColorMap(level, COLORMAPS[colormap]), cv2.COLOR_BGR2RGBA)
    steps = np.arange(256, dtype=np.float32) / 255.0
    if threshold > 0.0:
        alpha = np.where(steps >= threshold, opacity, 0.0)
    else:
        alpha = opacity * np.minimum(1.0, steps * 4.0)
    rgba[..., 3] = (alpha * 255.0).astype(np.uint8)[level]
    return rgba


@dataclass
class DisplayFrame:
    """A frame with everything the canvas needs precomputed (safe to build off the GUI thread:
    QImage, unlike QPixmap, may be created in any thread)."""

    frame: Frame
    presets: dict[str, Window]
    value_range: float
    image: QImage


def prepare_display(frame: Frame) -> DisplayFrame:
    """Window presets, value range and the default-window image of `frame`."""
    presets = window_presets(frame.values, frame.window)
    step = max(1, int(np.sqrt(frame.values.size / 250_000)))
    sample = frame.values[::step, ::step]
    finite = sample[np.isfinite(sample)]
    value_range = float(finite.max() - finite.min()) if finite.size else 1.0
    pixels = frame.rgb if frame.rgb is not None else windowed_uint8(frame.values, *frame.window)
    return DisplayFrame(frame, presets, max(value_range, 1e-6), to_qimage(pixels))


@dataclass
class OverlaySource:
    """An error map reduced for display, and the factor back to full-resolution geometry."""

    values: np.ndarray
    factor: float
    full_shape: tuple[int, int]
    scale: tuple[float, float]


def overlay_source(
    error_map: np.ndarray,
    display_max: float | None = None,
    anatomy: dict[str, Any] | None = None,
) -> OverlaySource:
    """Reduce a full-resolution map to at most OVERLAY_MAX_SIDE pixels (off the GUI thread);
    its colour scale runs from 0 to `display_max` (default: the map's 99.5th percentile). With
    the analysis' `anatomy` mask the map is drawn only there (not on the collimator band, the
    border or side markers, where no hotspot or score comes from)."""
    import cv2

    h, w = error_map.shape
    factor = max(h, w) / OVERLAY_MAX_SIDE
    values = error_map.astype(np.float32)
    if factor > 1.0:
        small = (max(1, round(w / factor)), max(1, round(h / factor)))
        values = cv2.resize(values, small, interpolation=cv2.INTER_AREA)
        factor = w / small[0]
    else:
        factor = 1.0
    if anatomy is not None:
        values = np.where(anatomy_at(anatomy, values.shape), values, np.float32(0.0))
    high = display_max if display_max is not None else float(np.nanpercentile(values, 99.5))
    return OverlaySource(values, factor, (h, w), (0.0, max(high, 1e-12)))


def overlay_image(source: OverlaySource, colormap: str, opacity: float, threshold: float) -> QImage:
    """The coloured overlay of a reduced map, as a QImage."""
    return to_qimage(overlay_rgba(source.values, colormap, opacity, threshold, source.scale))
