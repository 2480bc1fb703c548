"""Reading one frame of any supported file (DICOM, PNG, JPEG, TIFF) through the pixel pipeline.

Used by the importer, the viewer and inference alike, so every consumer sees the same values:
modality LUT applied, MONOCHROME1 inverted so bone is bright, the file's default window.
"""

from __future__ import annotations

from pathlib import Path

from skelex_desktop.core.domain import Calibration
from skelex_desktop.core.ingest.dicom_source import (
    decode_frame,
    has_dicm_prefix,
    looks_like_bare_dataset,
    parse_dicom,
)
from skelex_desktop.core.ingest.frame import Frame, apply_window
from skelex_desktop.core.ingest.layout import SIDECAR_NAME, parse_spacing, sidecar_entry
from skelex_desktop.core.ingest.limits import IngestError, skipped
from skelex_desktop.core.ingest.raster_source import RASTER_SUFFIXES, decode_raster, raster_kind

__all__ = ["Frame", "IngestError", "apply_window", "classify", "read_file", "read_frame"]

DICOM_SUFFIXES = {".dcm", ".dicom", ".dic", ".ima", ""}


def read_file(path: Path) -> bytes:
    """The bytes of `path`, with OS errors turned into readable reasons."""
    try:
        data = path.read_bytes()
    except PermissionError as exc:
        raise IngestError("permission denied: the file cannot be read") from exc
    except FileNotFoundError as exc:
        raise IngestError("file not found (moved or deleted during the import?)") from exc
    except IsADirectoryError as exc:
        raise IngestError("is a folder, not a file") from exc
    except OSError as exc:
        raise IngestError(f"cannot read file: {exc.strerror or exc}") from exc
    if not data:
        raise IngestError("empty file (0 bytes)")
    return data


def classify(data: bytes, path: Path) -> str:
    """'dicom', 'png', 'jpeg' or 'tiff'; IngestError (failed or skipped) for anything else."""
    if has_dicm_prefix(data):
        return "dicom"
    kind = raster_kind(data)
    if kind is not None:
        return kind
    suffix = path.suffix.lower()
    if looks_like_bare_dataset(data):
        return "dicom"
    if suffix in RASTER_SUFFIXES:
        raise IngestError(f"not a valid {suffix[1:].upper()} file: unknown signature")
    if suffix in DICOM_SUFFIXES - {""}:
        raise IngestError("not a DICOM file: no 'DICM' prefix and no dataset at the start")
    raise skipped("not a DICOM or image file")


def read_frame(path: Path, frame: int = 0) -> Frame:
    """Frame `frame` of the DICOM or raster image at `path`; IngestError says why not."""
    path = Path(path)
    data = read_file(path)
    kind = classify(data, path)
    if kind == "dicom":
        source = parse_dicom(data, path)
        if not 0 <= frame < source.frames:
            raise IngestError(f"frame {frame} out of range: the file has {source.frames}")
        return decode_frame(source, frame)
    if frame != 0:
        raise IngestError(f"frame {frame} out of range: {kind.upper()} images have one frame")
    spacing = parse_spacing(sidecar_entry(path, None).get("pixel_spacing_mm", ""))
    if spacing is None:
        return decode_raster(data, kind)
    source_tag = f"{SIDECAR_NAME}:pixel_spacing_mm"
    return decode_raster(data, kind, spacing, Calibration.CALIBRATED, source_tag)
