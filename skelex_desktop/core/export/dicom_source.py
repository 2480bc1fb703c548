"""The source image as the DICOM builders see it: a private copy, gaps filled as PS3.3 allows.

Every derived object (SR, Parametric Map, SEG) is built from its own copy of the source header,
so nothing one builder sets can leak into another's object. A source without a Study, Series or
SOP Instance UID or a SOP Class UID (Type 1 everywhere), or with one that is not a valid UID
(PS3.5 9.1: digits and dots, at most 64 characters; e.g. a hex hash), cannot be referenced by a
conformant object, and one of a retired SOP Class is in no current IOD table (highdicom derives
from those): none of them gets a derived object. Type 2 patient and study attributes the source lacks are present and empty in the
derived objects, as the standard allows; an empty Specific Character Set means the default
repertoire and is dropped. Dates and times the derived objects copy are given in the DICOM form
(the ACR-NEMA `1997.08.06` and `15:18:59` lose their separators; a value still not a DA or TM is
emptied). A source without Modality (Type 1 in every image IOD) is given `OT`
on the copy only, for highdicom's check of the evidence: no derived object copies it. A source
whose Patient Identity Removed is YES but that states no De-identification Method (Type 1C then,
text or code sequence; highdicom copies the Patient module's values) is given a method text
saying so, which the derived objects copy.
"""

from __future__ import annotations

import copy

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID
from pydicom.valuerep import DA, TM

REFERENCE_UIDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID")
# Type 2 attributes of the Patient and General Study modules that highdicom copies by keyword.
TYPE2_PATIENT_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)
# Dates and times of those modules that highdicom parses: (keyword, separator, value type).
DATES_TIMES = (
    ("PatientBirthDate", ".", DA),
    ("StudyDate", ".", DA),
    ("StudyTime", ":", TM),
)
UNSTATED_METHOD = "not stated by the source image"  # De-identification Method (Type 1C)
PIXEL_DATA_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # Pixel Data, Float and Double Float
# The Frame of Reference and the image plane that is positioned in it (Image Plane module).
PLANE = (
    "FrameOfReferenceUID",
    "PositionReferenceIndicator",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "SliceLocation",
)


def unusable(source: Dataset) -> str | None:
    """Why no object can be derived from `source` (a fixed text, no source values), or None."""
    missing = [k for k in REFERENCE_UIDS if not str(source.get(k, "") or "").strip()]
    if missing:
        return f"the source has no {', '.join(missing)}"
    invalid = [k for k in REFERENCE_UIDS if not UID(str(source.get(k)).strip()).is_valid]
    if invalid:
        verb = "is not a valid UID" if len(invalid) == 1 else "are not valid UIDs"
        return f"the source's {', '.join(invalid)} {verb}"
    sop_class = UID(str(source.SOPClassUID).strip())
    if sop_class.is_retired:
        return f"the source's SOP Class ({sop_class.name}) is retired"
    return None


def has_frame_of_reference(source: Dataset) -> bool:
    """Whether `source` has a Frame of Reference UID a derived object may carry: a valid UID
    that is not the Study Instance UID (PS3.3 C.7.4.1.1.1: a Frame of Reference identifies a
    spatial frame, not a study; dciodvfy reports the two being equal as an error)."""
    uid = str(source.get("FrameOfReferenceUID", "") or "").strip()
    study = str(source.get("StudyInstanceUID", "") or "").strip()
    return bool(uid) and UID(uid).is_valid and uid != study


def drop_plane(header: Dataset) -> None:
    """Remove the Frame of Reference and the image plane from a derivation copy: an unusable
    Frame of Reference (`has_frame_of_reference`) is treated as none, and a plane without it
    positions nothing."""
    for keyword in PLANE:
        if keyword in header:
            delattr(header, keyword)


def derivation_source(source: Dataset) -> Dataset:
    """A copy of `source`'s header (no pixel data) that highdicom can derive an object from."""
    header = Dataset()
    for element in source:
        if element.tag not in PIXEL_DATA_TAGS:
            header.add(copy.deepcopy(element))
    if hasattr(source, "file_meta"):
        header.file_meta = copy.deepcopy(source.file_meta)
    for keyword in TYPE2_PATIENT_STUDY:
        if keyword not in header:
            setattr(header, keyword, None)
    for keyword, separator, kind in DATES_TIMES:
        setattr(header, keyword, _conformant(header.get(keyword), separator, kind))
    if "SpecificCharacterSet" in header and not _charset_terms(header.SpecificCharacterSet):
        del header.SpecificCharacterSet
    if not str(header.get("Modality", "") or "").strip():
        header.Modality = "OT"
    identity_removed = str(header.get("PatientIdentityRemoved", "") or "").strip().upper()
    method = str(header.get("DeidentificationMethod", "") or "").strip()
    if (
        identity_removed == "YES"
        and not method
        and not header.get("DeidentificationMethodCodeSequence")
    ):
        header.DeidentificationMethod = UNSTATED_METHOD
    return header


def _charset_terms(value: object) -> list[str]:
    """The non-empty defined terms of a Specific Character Set value (one or many)."""
    values = list(value) if isinstance(value, (list, tuple, MultiValue)) else [value]
    return [str(v).strip() for v in values if v is not None and str(v).strip()]


def _conformant(value: object, separator: str, kind: type[DA] | type[TM]) -> str | None:
    """`value` as a DA or TM string without the old separators, or None when it is none."""
    text = str(value or "").strip().replace(separator, "")
    if not text:
        return None
    try:
        kind(text)
    except ValueError:
        return None
    return text
