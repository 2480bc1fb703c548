"""Direct python-gdcm decoding, for files no pydicom plugin decodes (e.g. 12-bit JPEG Extended,
which pydicom's own gdcm plugin refuses). The whole file is decoded once and cached."""

from __future__ import annotations

from pathlib import Path

import numpy as np

try:  # python-gdcm is a dependency, but a broken install must only cost this fallback
    import gdcm
except ImportError:  # pragma: no cover - depends on the installation
    gdcm = None

_DTYPES = {
    "UINT8": np.uint8,
    "INT8": np.int8,
    "UINT12": np.uint16,
    "INT12": np.int16,
    "UINT16": np.uint16,
    "INT16": np.int16,
    "UINT32": np.uint32,
    "INT32": np.int32,
    "FLOAT32": np.float32,
    "FLOAT64": np.float64,
}


def gdcm_available() -> bool:
    return gdcm is not None


def decode_volume(path: Path, rows: int, cols: int, frames: int, samples: int) -> np.ndarray:
    """All frames of `path` as (frames, rows, cols[, samples]); ValueError when GDCM fails."""
    if gdcm is None:
        raise ValueError("python-gdcm is not installed")
    gdcm.Trace.WarningOff()
    gdcm.Trace.ErrorOff()
    reader = gdcm.ImageReader()
    reader.SetFileName(str(path))
    if not reader.Read():
        raise ValueError("GDCM cannot read the file")
    image = reader.GetImage()
    scalar = image.GetPixelFormat().GetScalarTypeAsString()
    dtype = _DTYPES.get(scalar)
    if dtype is None:
        raise ValueError(f"GDCM pixel format {scalar} is not supported")
    buffer = image.GetBuffer()
    if isinstance(buffer, str):
        buffer = buffer.encode("utf-8", "surrogateescape")
    if not buffer:
        raise ValueError("GDCM decoded no pixel data")
    flat = np.frombuffer(buffer, dtype=dtype)
    shape = (frames, rows, cols, samples) if samples > 1 else (frames, rows, cols)
    expected = int(np.prod(shape))
    if flat.size < expected:
        raise ValueError(f"GDCM decoded {flat.size} samples, expected {expected}")
    return flat[:expected].reshape(shape)
