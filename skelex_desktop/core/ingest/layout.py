"""Patient and study of non-DICOM images: the folder layout, overridden by a sidecar CSV.

Layout, relative to the import root: `ROOT/<patient id>/<study id>/[<series>/...]<image>`.
A file directly in a patient folder belongs to one study named after that patient folder; a
file directly in the import root belongs to a patient and study named after the root folder.
UIDs are derived deterministically (UUID-derived `2.25.` form) so a re-import finds the same
rows; the SOP Instance UID comes from the file's content hash.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from skelex_desktop.core.domain import Calibration
from skelex_desktop.core.ingest.records import PatientInfo, SeriesInfo, StudyInfo
from skelex_desktop.core.ingest.text import clean, clip, parse_date, positive_float

SIDECAR_NAME = "skelex_sidecar.csv"
SIDECAR_COLUMNS = (
    "file",
    "patient_id",
    "patient_name",
    "birth_date",
    "sex",
    "study_uid",
    "study_date",
    "accession_number",
    "body_part",
    "view",
    "laterality",
    "pixel_spacing_mm",
)
RASTER_MODALITY = "OT"


def deterministic_uid(*parts: str) -> str:
    """A valid DICOM UID (2.25.<128-bit integer>) that depends only on `parts`."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return f"2.25.{int(digest[:32], 16)}"


@dataclass
class RasterSubjects:
    """Everything about a non-DICOM image that is not in its pixels."""

    patient: PatientInfo
    study: StudyInfo
    series: SeriesInfo
    sop_instance_uid: str
    body_part: str = ""
    view: str = ""
    laterality: str = ""
    pixel_spacing: tuple[float, float] | None = None
    calibration: Calibration = Calibration.UNCALIBRATED
    spacing_source: str = ""


def _layout_parts(path: Path, root: Path) -> tuple[str, str, str]:
    """(patient, study, series) folder names of `path` under `root`."""
    try:
        parts = path.parent.relative_to(root).parts
    except ValueError:
        parts = ()
    if not parts:
        return root.name or "UNKNOWN", "", ""
    if len(parts) == 1:
        return parts[0], "", ""
    return parts[0], parts[1], "/".join(parts[2:])


@lru_cache(maxsize=64)
def _load_sidecar(csv_path: str, mtime_ns: int) -> dict[str, dict[str, str]]:
    """Rows of a sidecar keyed by the normalised absolute path of their `file`."""
    del mtime_ns  # part of the cache key only
    rows: dict[str, dict[str, str]] = {}
    base = os.path.dirname(csv_path)
    with open(csv_path, newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            values = {clip(k, 64).lower(): clean(v) for k, v in row.items() if k}
            name = values.get("file", "")
            if name:
                rows[os.path.normcase(os.path.normpath(os.path.join(base, name)))] = values
    return rows


def sidecar_entry(path: Path, root: Path | None) -> dict[str, str]:
    """The row describing `path` in the nearest sidecar between its folder and `root`."""
    key = os.path.normcase(os.path.normpath(os.path.abspath(path)))
    folder = Path(os.path.abspath(path)).parent
    stop = Path(os.path.abspath(root)) if root is not None else None
    while True:
        candidate = folder / SIDECAR_NAME
        try:
            stat = candidate.stat()
            entry = _load_sidecar(str(candidate), stat.st_mtime_ns).get(key)
        except (OSError, csv.Error, UnicodeDecodeError):
            entry = None
        if entry is not None:
            return entry
        if folder == stop or folder.parent == folder or (stop and stop not in folder.parents):
            return {}
        folder = folder.parent


def parse_spacing(text: str) -> tuple[float, float] | None:
    """`0.1` (square pixels) or `0.1\\0.12` / `0.1 0.12` / `0.1x0.12` as (row, col) mm."""
    values = [positive_float(v) for v in re.split(r"[\\x;/ ]+", text.strip()) if v]
    if len(values) == 1 and values[0]:
        return values[0], values[0]
    if len(values) == 2 and values[0] and values[1]:
        return values[0], values[1]
    return None


def raster_subjects(path: Path, root: Path, content_hash: str) -> RasterSubjects:
    """Patient/study/series of a PNG/JPEG/TIFF from its folders and its sidecar row, values
    whole (`limits.fit_columns` fits them)."""
    patient_dir, study_dir, series_dir = _layout_parts(path, root)
    entry = sidecar_entry(path, root)
    patient_id = clean(entry.get("patient_id") or patient_dir) or "UNKNOWN"
    study_key = study_dir or patient_dir
    study_uid = clean(entry.get("study_uid")) or deterministic_uid("study", patient_id, study_key)
    series_uid = deterministic_uid("series", study_uid, series_dir)
    spacing = parse_spacing(entry.get("pixel_spacing_mm", ""))
    return RasterSubjects(
        patient=PatientInfo(
            patient_id=patient_id,
            name=clean(entry.get("patient_name")),
            birth_date=parse_date(entry.get("birth_date")),
            sex=clean(entry.get("sex")),
        ),
        study=StudyInfo(
            study_uid=study_uid,
            study_date=parse_date(entry.get("study_date")),
            accession_number=clean(entry.get("accession_number") or study_dir),
            description=clean(study_dir),
        ),
        series=SeriesInfo(
            series_uid=series_uid, modality=RASTER_MODALITY, description=clean(series_dir)
        ),
        sop_instance_uid=deterministic_uid("sop", content_hash),
        body_part=clean(entry.get("body_part")).upper(),
        view=clean(entry.get("view")).upper(),
        laterality=clean(entry.get("laterality")).upper(),
        pixel_spacing=spacing,
        calibration=Calibration.CALIBRATED if spacing else Calibration.UNCALIBRATED,
        spacing_source=f"{SIDECAR_NAME}:pixel_spacing_mm" if spacing else "",
    )
