"""Reading the source files of exported images: DICOM or raster, headers and burned-in flags."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from skelex_desktop.core.export.options import ExportError
from skelex_desktop.core.ingest.pixels import classify, read_file

HEAD_BYTES = 65536


@lru_cache(maxsize=256)
def source_kind(path: str) -> str:
    """'dicom', 'png', 'jpeg' or 'tiff' for an image file on disk."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
        return classify(head or read_file(Path(path)), Path(path))
    except Exception as exc:  # IngestError and OS errors: one readable line
        raise ExportError(f"cannot read source image {Path(path).name}: {exc}") from exc


def is_dicom(path: str) -> bool:
    return source_kind(path) == "dicom"


def read_header(path: str) -> Dataset:
    """The DICOM header without pixel data."""
    try:
        return pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except (OSError, InvalidDicomError) as exc:
        raise ExportError(f"cannot read DICOM header of {Path(path).name}: {exc}") from exc


def read_dataset(path: str) -> Dataset:
    """The whole DICOM data set, pixel data included."""
    try:
        return pydicom.dcmread(path, force=True)
    except (OSError, InvalidDicomError) as exc:
        raise ExportError(f"cannot read DICOM file {Path(path).name}: {exc}") from exc


def burned_in(header: Dataset) -> bool:
    """True when the file says its pixels carry burned-in annotation (BurnedInAnnotation YES)."""
    return str(header.get("BurnedInAnnotation", "")).strip().upper() == "YES"


def frame_count(header: Dataset) -> int:
    try:
        return max(1, int(header.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1
