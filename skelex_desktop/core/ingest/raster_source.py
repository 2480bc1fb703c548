"""PNG, JPEG and TIFF images (8 and 16 bit, grey or colour) decoded with OpenCV.

Dimensions are read from the file header first, so absurdly large images are refused before
OpenCV allocates them. Multi-page TIFFs give their first page.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

from skelex_desktop.core.domain import Calibration
from skelex_desktop.core.ingest.frame import Frame, luminance, percentile_window
from skelex_desktop.core.ingest.limits import IngestError, check_frame_size

RASTER_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}
_SOF_MARKERS = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def raster_kind(data: bytes) -> str | None:
    """'png', 'jpeg' or 'tiff' from the file's magic bytes, else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    return None


def _png_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return height, width


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xDA)):
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _SOF_MARKERS and pos + 9 <= len(data):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return height, width
        pos += 2 + length
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    order = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    try:
        if big:
            (offset,) = struct.unpack(order + "Q", data[8:16])
            (count,) = struct.unpack(order + "Q", data[offset : offset + 8])
            start, size = offset + 8, 20
        else:
            (offset,) = struct.unpack(order + "I", data[4:8])
            (count,) = struct.unpack(order + "H", data[offset : offset + 2])
            start, size = offset + 2, 12
        found: dict[int, int] = {}
        for i in range(min(count, 4096)):
            entry = data[start + i * size : start + (i + 1) * size]
            tag, kind = struct.unpack(order + "HH", entry[:4])
            if tag in (256, 257):
                value = entry[12:] if big else entry[8:]
                fmt = "H" if kind == 3 else ("Q" if kind == 16 else "I")
                found[tag] = struct.unpack(order + fmt, value[: struct.calcsize(fmt)])[0]
        return (found[257], found[256]) if 256 in found and 257 in found else None
    except (struct.error, KeyError):
        return None


def raster_size(data: bytes, kind: str) -> tuple[int, int] | None:
    """(rows, cols) from the header of a PNG/JPEG/TIFF, or None when it cannot be read."""
    reader = {"png": _png_size, "jpeg": _jpeg_size, "tiff": _tiff_size}[kind]
    return reader(data)


def decode_raster(
    data: bytes,
    kind: str,
    spacing: tuple[float, float] | None = None,
    calibration: Calibration = Calibration.UNCALIBRATED,
    spacing_source: str = "",
) -> Frame:
    """Decode a PNG/JPEG/TIFF into a Frame (8-bit grey: full range window; else percentiles)."""
    size = raster_size(data, kind)
    if size is not None:
        check_frame_size(*size)
    array = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None or array.size == 0:
        raise IngestError(f"cannot decode {kind.upper()} image (corrupt or unsupported)")
    check_frame_size(array.shape[0], array.shape[1])
    bits = 8 * array.dtype.itemsize if array.dtype.kind in "ui" else 32
    rgb: np.ndarray | None = None
    if array.ndim == 3 and array.shape[2] >= 3:
        colour = cv2.cvtColor(np.ascontiguousarray(array[..., :3]), cv2.COLOR_BGR2RGB)
        rgb = colour if colour.dtype == np.uint8 else _scale_to_uint8(colour)
        values = luminance(rgb)
        window = (127.5, 255.0)
        photometric = "RGB"
    else:
        grey = array[..., 0] if array.ndim == 3 else array
        values = grey.astype(np.float32)
        window = (127.5, 255.0) if grey.dtype == np.uint8 else percentile_window(values)
        photometric = "MONOCHROME2"
    return Frame(
        values=values,
        rgb=rgb,
        window=window,
        pixel_spacing=spacing,
        calibration=calibration,
        spacing_source=spacing_source,
        photometric=photometric,
        bits_stored=bits,
    )


def _scale_to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind == "f":
        top = float(np.nanmax(array)) or 1.0
        return np.clip(array / top * 255.0, 0, 255).astype(np.uint8)
    shift = 8 * array.dtype.itemsize - 8
    return (array >> shift).astype(np.uint8)
