"""Size limits of the importer and the error type that carries a per-file reason.

Header values are read whole and fitted to their columns here, in one place (`fit_columns`):
an identifier is never cut, because a cut key merges different patients or studies. A UID
longer than DICOM's 64 characters is invalid and its file is refused; a Patient ID or Accession
Number is stored whole up to `IDENTIFIER_MAX` characters and refused beyond; descriptive text
(names, descriptions, codes) is cut to its column. Every cut, and every identifier longer than
DICOM allows, is named in the file's reason in the import report.
"""

from __future__ import annotations

from skelex_desktop.core.domain import ImportOutcome
from skelex_desktop.core.ingest.records import PatientInfo, SeriesInfo, StudyInfo

MAX_FRAME_PIXELS = 100_000_000
"""Largest accepted frame (rows x columns); bigger images are refused before decoding."""

MAX_FILE_PIXELS = 1_000_000_000
"""Largest accepted file (frames x rows x columns), so a corrupt frame count cannot explode."""

THUMBNAIL_PX = 256
"""Longest side of a thumbnail."""

UID_MAX = 64
"""DICOM's maximum UID length (PS3.5 9.1): a longer Study/Series/SOP Instance UID is invalid."""

IDENTIFIER_MAX = 512
"""Longest Patient ID or Accession Number stored (whole); longer ones are refused. The unique
index on patients.patient_id must fit a PostgreSQL B-tree entry (2,704 bytes): 512 characters
of UTF-8 are at most 2,048 bytes."""

DICOM_IDENTIFIER_MAX = {"Patient ID": 64, "Accession Number": 16}
"""What DICOM allows (LO, SH): longer values are stored whole, and named in the report."""

TEXT_MAX = {
    "Patient Name": 256,
    "Patient Sex": 16,
    "Study Description": 256,
    "Series Description": 256,
    "Modality": 16,
    "Body Part Examined": 64,
    "View Position": 16,
    "Laterality": 4,
}
"""Column sizes of the descriptive values, which are cut to fit (and the cut reported)."""

_UID_SUBJECT = {
    "SOP Instance UID": "images",
    "Study Instance UID": "studies",
    "Series Instance UID": "series",
}


class IngestError(Exception):
    """One file cannot be imported; `outcome` is failed or skipped and the message says why."""

    def __init__(self, reason: str, outcome: ImportOutcome = ImportOutcome.FAILED) -> None:
        super().__init__(reason)
        self.reason = reason
        self.outcome = outcome


def reraise_interrupts(exc: BaseException) -> None:
    """Re-raise what must stop the program; everything else a decoder raises is a file's
    failure. Native decoders can raise outside `Exception` (a Rust panic surfaces as pyo3's
    PanicException, a BaseException), and one broken file must never stop an import."""
    if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
        raise exc


def failure(exc: BaseException) -> tuple[ImportOutcome, str]:
    """What a file gets for an exception raised while reading it: an IngestError's own outcome
    and reason, else failed with a one-line reason. Interrupts are re-raised."""
    if isinstance(exc, IngestError):
        return exc.outcome, exc.reason
    if isinstance(exc, MemoryError):
        return ImportOutcome.FAILED, "out of memory while decoding"
    reraise_interrupts(exc)
    message = " ".join(str(exc).split())[:300]
    return ImportOutcome.FAILED, f"unexpected error: {type(exc).__name__}: {message}"


def skipped(reason: str) -> IngestError:
    """An IngestError for a file that is readable but not an image (SR, KOS, text, ...)."""
    return IngestError(reason, ImportOutcome.SKIPPED)


def check_frame_size(rows: int, cols: int, frames: int = 1) -> None:
    """Refuse empty or absurdly large images before any pixel is decoded."""
    if rows <= 0 or cols <= 0:
        raise IngestError(f"image has zero size: {rows} rows x {cols} columns")
    if frames <= 0:
        raise IngestError(f"invalid number of frames: {frames}")
    if rows * cols > MAX_FRAME_PIXELS:
        raise IngestError(
            f"image too large: {rows} x {cols} = {rows * cols:,} pixels exceeds the limit of "
            f"{MAX_FRAME_PIXELS:,}"
        )
    if rows * cols * frames > MAX_FILE_PIXELS:
        raise IngestError(
            f"file too large: {frames} frames of {rows} x {cols} exceed the limit of "
            f"{MAX_FILE_PIXELS:,} pixels per file"
        )


def _identifier(label: str, value: str, dicom: bool, notes: list[str]) -> str:
    if len(value) > IDENTIFIER_MAX:
        raise IngestError(
            f"{label} of {len(value):,} characters is longer than the {IDENTIFIER_MAX} SKELEX "
            f"Desktop stores; the file is refused rather than the {label} cut (a cut "
            "identifier could merge different patients or studies)"
        )
    limit = DICOM_IDENTIFIER_MAX[label]
    if dicom and len(value) > limit:
        notes.append(
            f"{label} has {len(value)} characters, more than DICOM's {limit}: stored whole"
        )
    return value


def _text(label: str, value: str, notes: list[str]) -> str:
    limit = TEXT_MAX[label]
    if len(value) <= limit:
        return value
    notes.append(f"{label} cut to {limit} of its {len(value):,} characters")
    return value[:limit]


def fit_columns(
    patient: PatientInfo,
    study: StudyInfo,
    series: SeriesInfo,
    sop_instance_uid: str,
    attributes: dict[str, str],
    dicom: bool = True,
) -> list[str]:
    """Fit a file's header values (read whole) to their columns, in place: raise IngestError
    for an over-long UID or identifier, cut descriptive text. Returns the notes for the
    report (cuts; identifiers longer than DICOM allows, for DICOM files)."""
    uids = {
        "SOP Instance UID": sop_instance_uid,
        "Study Instance UID": study.study_uid,
        "Series Instance UID": series.series_uid,
    }
    for label, uid in uids.items():
        if len(uid) > UID_MAX:
            raise IngestError(
                f"invalid {label}: {len(uid)} characters, more than the {UID_MAX} a DICOM UID "
                f"may have (not cut: a cut UID could merge different {_UID_SUBJECT[label]})"
            )
    notes: list[str] = []
    patient.patient_id = _identifier("Patient ID", patient.patient_id, dicom, notes)
    study.accession_number = _identifier("Accession Number", study.accession_number, dicom, notes)
    patient.name = _text("Patient Name", patient.name, notes)
    patient.sex = _text("Patient Sex", patient.sex, notes)
    study.description = _text("Study Description", study.description, notes)
    series.description = _text("Series Description", series.description, notes)
    series.modality = _text("Modality", series.modality, notes)
    for key, label in (
        ("body_part", "Body Part Examined"),
        ("view", "View Position"),
        ("laterality", "Laterality"),
    ):
        attributes[key] = _text(label, attributes[key], notes)
    return notes
