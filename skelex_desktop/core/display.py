"""Display mapping of radiograph values: window/level to 8 bit (bone bright)."""

from __future__ import annotations

import numpy as np


def apply_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """Linear window (DICOM PS3.3 C.11.2.1.2 style) of `values` to uint8."""
    width = max(float(width), 1.0)
    low = float(center) - 0.5 - (width - 1.0) / 2.0
    scaled = (values.astype(np.float32) - low) / (width - 1.0 if width > 1.0 else 1.0)
    return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
