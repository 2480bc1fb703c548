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
from pydicom.uid import UID

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
    kept = _kept_meta_instance(ds)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)  # completes the file meta, updates its UIDs
    if kept is None:
        return buf.getvalue()
    # pydicom copied the data set's invalid SOP Instance UID into the file meta: write the
    # source's valid one back (the now complete meta as it is), as the source file has it
    ds.file_meta.MediaStorageSOPInstanceUID = kept
    if not ds.preamble:
        ds.preamble = b"\x00" * 128
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=False)
    return buf.getvalue()


def _kept_meta_instance(ds: Dataset) -> UID | None:
    """The source's Media Storage SOP Instance UID, when the copy must keep it although the data
    set's SOP Instance UID differs: the data set's is not a valid UID and the meta's is (else
    the copy would add invalid-UID Errors in its file meta that its source does not have)."""
    meta = getattr(ds, "file_meta", None)
    stored = str(meta.get("MediaStorageSOPInstanceUID", "") or "") if meta is not None else ""
    own = str(ds.get("SOPInstanceUID", "") or "")
    if not stored or not own or stored == own or UID(own).is_valid:
        return None
    return UID(stored) if UID(stored).is_valid else None
