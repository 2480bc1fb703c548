"""Plain, picklable records passed from the decoding workers to the database writer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from skelex_desktop.core.domain import ImportOutcome


@dataclass(frozen=True)
class FileTask:
    """One file to decode; `root` is the import root it was found under (folder layout)."""

    path: str
    root: str


@dataclass
class PatientInfo:
    patient_id: str
    name: str = ""
    birth_date: date | None = None
    sex: str = ""


@dataclass
class StudyInfo:
    study_uid: str
    study_date: date | None = None
    accession_number: str = ""
    description: str = ""


@dataclass
class SeriesInfo:
    series_uid: str
    modality: str = ""
    series_number: int | None = None
    description: str = ""


@dataclass
class ImageRecord:
    """The columns of one `Image` row (one frame) as decoded by a worker."""

    sop_instance_uid: str
    frame: int
    rows: int
    cols: int
    bits_stored: int
    photometric: str
    modality: str
    body_part: str
    view: str
    laterality: str
    pixel_spacing_row: float | None
    pixel_spacing_col: float | None
    spacing_source: str
    calibration: str
    window_center: float | None
    window_width: float | None
    transfer_syntax: str
    thumbnail_path: str


@dataclass
class DecodedFile:
    """A worker's verdict on one file.

    `outcome` is IMPORTED when frames were decoded (the writer may still find them duplicates),
    DUPLICATE when every (SOP Instance UID, frame) was already known before decoding (then
    `duplicate_keys` lists them), or SKIPPED / FAILED with a `reason`.
    """

    path: str
    outcome: ImportOutcome
    reason: str = ""
    content_hash: str = ""
    patient: PatientInfo | None = None
    study: StudyInfo | None = None
    series: SeriesInfo | None = None
    images: list[ImageRecord] = field(default_factory=list)
    duplicate_keys: list[tuple[str, int]] = field(default_factory=list)
