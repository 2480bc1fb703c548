"""Exported image files: 16-bit PNG of the values, 8-bit windowed PNG, or the (de-identified)
original DICOM."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pydicom.dataset import Dataset

from skelex_desktop.core.export.options import ExportError
from skelex_desktop.core.ingest.frame import apply_window
from skelex_desktop.core.ingest.pixels import read_frame

U16_MAX = 65535


@dataclass
class PngImage:
    """Encoded PNG bytes and how its stored values relate to the image values."""

    data: bytes
    width: int
    height: int
    mapping: dict[str, Any] = field(default_factory=dict)


def _encode(array: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", array)
    if not ok:
        raise ExportError("PNG encoding failed")
    return buf.tobytes()


def _png16(values: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    finite = values[np.isfinite(values)]
    low = float(finite.min()) if finite.size else 0.0
    high = float(finite.max()) if finite.size else 0.0
    clean = np.nan_to_num(values, nan=low, posinf=high, neginf=low)
    if low >= 0 and high <= U16_MAX and np.array_equal(clean, np.round(clean)):
        return clean.astype(np.uint16), {"offset": 0.0, "scale": 1.0}
    scale = U16_MAX / (high - low) if high > low else 1.0
    stored = np.clip(np.round((clean - low) * scale), 0, U16_MAX).astype(np.uint16)
    return stored, {"offset": low, "scale": scale}


def render_png(source: str, frame: int, mode: str) -> PngImage:
    """The PNG of frame `frame` of `source`: `png16` (values, bone bright) or `png8` (windowed).

    png16 stores the values unchanged when they are integers in 0..65535, else
    `stored = (value - offset) * scale`; colour images are written as 8-bit RGB in both modes.
    """
    try:
        decoded = read_frame(Path(source), frame)
    except Exception as exc:  # IngestError and decoder errors: one line naming the file
        raise ExportError(f"cannot decode {Path(source).name} frame {frame}: {exc}") from exc
    height, width = decoded.shape
    if decoded.rgb is not None:
        bgr = cv2.cvtColor(np.ascontiguousarray(decoded.rgb[..., :3]), cv2.COLOR_RGB2BGR)
        return PngImage(_encode(bgr), width, height, {"colour": "rgb8"})
    if mode == "png8":
        center, width_w = decoded.window
        gray = np.round(apply_window(decoded.values, center, width_w) * 255).astype(np.uint8)
        return PngImage(
            _encode(gray), width, height, {"window_center": center, "window_width": width_w}
        )
    stored, mapping = _png16(decoded.values)
    return PngImage(_encode(stored), width, height, mapping)


def dicom_bytes(ds: Dataset) -> bytes:
    """A data set as a DICOM Part 10 file (preamble, file meta).

    Elements still raw (not yet accessed) are converted first, nested ones included: a file read
    in another VR encoding than its transfer syntax declares (explicit declared, implicit found)
    leaves raw elements without a VR, which pydicom cannot write in the declared encoding.
    """
    for _ in ds.iterall():  # accessing each element converts it (the VR from the dictionary)
        pass
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
