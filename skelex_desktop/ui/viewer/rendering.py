"""Turning radiograph values into Qt images: window/level, inversion, colour maps."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage

from skelex_desktop.core.ingest.frame import apply_window


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
    """An RGBA uint8 overlay of `error_map`: values below `threshold` (0-1 of the scale) are
    transparent; the rest take the colour map at `opacity`."""
    import cv2

    low, high = scale if scale is not None else (0.0, float(np.nanpercentile(error_map, 99.5)))
    unit = np.clip((error_map.astype(np.float32) - low) / max(high - low, 1e-12), 0.0, 1.0)
    unit = np.nan_to_num(unit)
    bgr = cv2.applyColorMap((unit * 255).astype(np.uint8), COLORMAPS[colormap])
    rgba = np.empty((*unit.shape, 4), dtype=np.uint8)
    rgba[..., :3] = bgr[..., ::-1]
    alpha = np.where(unit >= threshold, opacity * 255.0, 0.0)
    if threshold <= 0.0:
        alpha = opacity * 255.0 * np.minimum(1.0, unit * 4.0)  # fade out the near-zero error
    rgba[..., 3] = alpha.astype(np.uint8)
    return rgba
