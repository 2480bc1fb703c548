"""Builders shared by the ingest tests: small synthetic DICOM and raster files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.ingest import ImportOptions, ImportReport, import_paths
from skelex_desktop.core.progress import Progress

CR_STORAGE = "1.2.840.10008.5.1.4.1.1.1"


def bone_phantom(rows: int = 64, cols: int = 48, bits: int = 12) -> np.ndarray:
    """A dark background with a bright central 'bone' rectangle and a gradient."""
    top = 2**bits - 1
    image = np.full((rows, cols), top // 10, dtype=np.uint16)
    image[rows // 4 : 3 * rows // 4, cols // 3 : 2 * cols // 3] = int(top * 0.9)
    image += np.arange(cols, dtype=np.uint16)[None, :] % 7
    return image


def make_dicom(path: Path, pixels: np.ndarray | None = None, **attrs: Any) -> Path:
    """Write an explicit-VR little-endian CR file; `attrs` override or add elements."""
    pixels = bone_phantom() if pixels is None else pixels
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CR_STORAGE
    meta.MediaStorageSOPInstanceUID = attrs.get("SOPInstanceUID", generate_uid())
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CR_STORAGE
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = "P1"
    ds.PatientName = "Doe^Jane"
    ds.StudyDate = "20240102"
    ds.Modality = "CR"
    ds.BodyPartExamined = "HAND"
    ds.ViewPosition = "PA"
    ds.ImageLaterality = "L"
    ds.Rows, ds.Columns = pixels.shape[-2:] if pixels.ndim == 2 else pixels.shape[1:3]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    if pixels.ndim == 3:
        ds.NumberOfFrames = pixels.shape[0]
    for key, value in attrs.items():
        setattr(ds, key, value)
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_raster(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def run_import(
    db: Database,
    data_dir: Path,
    paths: list[Path],
    progress: Progress | None = None,
    **options: Any,
) -> ImportReport:
    options.setdefault("workers", 1)
    return import_paths(db, paths, ImportOptions(data_dir=data_dir, **options), progress)


def outcome_of(report: ImportReport, path: Path) -> tuple[str, str]:
    wanted = str(Path(path).absolute())
    for result in report.files:
        if result.path == wanted:
            return str(result.outcome), result.reason
    raise AssertionError(f"{path} not in the report: {[r.path for r in report.files]}")
