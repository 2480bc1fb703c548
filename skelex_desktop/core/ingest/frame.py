"""A decoded frame ready for display and for the model, and the windowing rules shared by
DICOM and raster images."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from skelex_desktop.core.domain import Calibration

PERCENTILES = (0.5, 99.5)
"""Robust default window when the file carries none: these percentiles of the values."""

_SAMPLE_PIXELS = 16_384  # ~0.1 ms; the 0.5 % tails still hold ~80 samples each


@dataclass
class Frame:
    """One frame after the pixel pipeline.

    `values`: float32 rows x cols, modality LUT applied, MONOCHROME1 inverted (bone bright); for
    colour images the luminance. `rgb`: uint8 rows x cols x 3 for colour images, else None.
    `gray`: float32 in [0, 1], `values` at the default `window` (center, width): the model input.
    `pixel_spacing`: (row, col) in mm, or None when uncalibrated.
    """

    values: np.ndarray
    rgb: np.ndarray | None
    window: tuple[float, float]
    pixel_spacing: tuple[float, float] | None
    calibration: Calibration
    spacing_source: str
    photometric: str = "MONOCHROME2"
    bits_stored: int = 8
    frames: int = 1

    @cached_property
    def gray(self) -> np.ndarray:
        """`values` at the default window as float32 in [0, 1] (computed on first use)."""
        return apply_window(self.values, *self.window)

    @property
    def model_pixels(self) -> np.ndarray:
        """What analysis and the model take: the RGB array of a colour image, else `values`."""
        return self.rgb if self.rgb is not None else self.values

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.values.shape[0]), int(self.values.shape[1])


def percentile_window(values: np.ndarray) -> tuple[float, float]:
    """(center, width) spanning the 0.5th to 99.5th percentile, on a subsample if large."""
    step = max(1, int(np.sqrt(values.size / _SAMPLE_PIXELS)))
    sample = values[::step, ::step]
    finite = sample[np.isfinite(sample)]
    if finite.size == 0:
        return 0.5, 1.0
    low, high = np.percentile(finite, PERCENTILES)
    if high <= low:
        low, high = float(finite.min()), float(finite.max())
    return float(low + high) / 2.0, float(high - low) or 1.0


def apply_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """`values` mapped linearly to float32 [0, 1]: center - width/2 -> 0, center + width/2 -> 1."""
    width = max(float(width), 1e-6)
    low = float(center) - width / 2.0
    out = (values.astype(np.float32, copy=False) - np.float32(low)) * np.float32(1.0 / width)
    np.clip(out, 0.0, 1.0, out=out)
    return np.nan_to_num(out, copy=False)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an RGB image as float32."""
    weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
    return rgb[..., :3].astype(np.float32) @ weights


def to_rgb8(rgb: np.ndarray, bits: int) -> np.ndarray:
    """A colour array of any integer depth as uint8 RGB."""
    if rgb.dtype == np.uint8:
        return np.ascontiguousarray(rgb[..., :3])
    shift = max(0, bits - 8)
    scaled = rgb[..., :3].astype(np.int64) >> shift
    return np.clip(scaled, 0, 255).astype(np.uint8)


def uncalibrated() -> tuple[None, Calibration, str]:
    """The spacing triple of an image without a trustworthy pixel size."""
    return None, Calibration.UNCALIBRATED, ""
