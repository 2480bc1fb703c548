"""The identifying values of the exported patients: what the verification pass looks for.

Collected from the database (patient ID, name, birth date, accession number, instance UIDs) and
from each source DICOM header (names of patients and staff, IDs, institution, addresses, UIDs).
Person names are also split into components (family, given, middle; three characters or more).
The headers' device descriptions (Manufacturer, model, software versions) are kept beside them:
the scan tolerates an institution named like its device maker inside those attributes only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import cast

from pydicom.dataset import Dataset

from skelex_desktop.core.export.selection import ExportItem

NAME_KEYWORDS = (
    "PatientName",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientMotherBirthName",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "NameOfPhysiciansReadingStudy",
    "RequestingPhysician",
    "PhysiciansOfRecord",
)
TEXT_KEYWORDS = (
    "PatientID",
    "OtherPatientIDs",
    "AccessionNumber",
    "AdmissionID",
    "MedicalRecordLocator",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "DeviceSerialNumber",
)
ORGANISATION_FIELDS = frozenset(
    {"InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName"}
)
# General Equipment attributes absent from PS3.15 Table E.1-1: the Basic Profile keeps them
DEVICE_KEYWORDS = ("Manufacturer", "ManufacturerModelName", "SoftwareVersions")
DATE_KEYWORDS = ("PatientBirthDate",)
UID_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID")
MIN_TEXT = 3
MIN_DIGITS = 6


@dataclass(frozen=True)
class Identifier:
    """One identifying value: which field it came from and whose it is (a database key)."""

    field: str
    value: str
    owner: str
    kind: str  # "text" or "uid"


def _texts(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        items = cast(Iterable[object], value)  # a pydicom MultiValue is a list of values
        return [str(v).strip() for v in items if str(v).strip()]
    text = str(value).strip()
    return [text] if text else []


def _usable(text: str) -> bool:
    if text.isdigit():
        return len(text) >= MIN_DIGITS
    return len(text) >= MIN_TEXT and any(c.isalnum() for c in text)


def _name_parts(name: str) -> list[str]:
    """The full name, its readable form and its family, given and middle components."""
    out = [name, name.replace("^", " ").strip()]
    for group in name.split("="):
        out += [part.strip() for part in group.split("^")[:3]]
    return out


def _date_forms(value: date | str) -> list[str]:
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"\d{8}", text):
            return [text] if text else []
        value = date(int(text[:4]), int(text[4:6]), int(text[6:]))
    return [
        value.strftime("%Y%m%d"),
        value.isoformat(),
        value.strftime("%d.%m.%Y"),
        value.strftime("%m/%d/%Y"),
    ]


class IdentifierSet:
    """Identifying values, deduplicated; `add_*` ignore values too short to be meaningful."""

    def __init__(self) -> None:
        self._by_value: dict[tuple[str, str], Identifier] = {}
        self.device_values: set[str] = set()

    def __iter__(self) -> Iterator[Identifier]:
        return iter(self._by_value.values())

    def __len__(self) -> int:
        return len(self._by_value)

    def add(self, field: str, value: str, owner: str, kind: str = "text") -> None:
        value = value.strip()
        if not _usable(value):
            return
        self._by_value.setdefault((kind, value.lower()), Identifier(field, value, owner, kind))

    def add_name(self, field: str, name: str, owner: str) -> None:
        for i, part in enumerate(_name_parts(name)):
            self.add(field if i < 2 else f"{field} component", part, owner)

    def add_date(self, field: str, value: date | str, owner: str) -> None:
        for form in _date_forms(value):
            self.add(field, form, owner)

    def add_item(self, item: ExportItem) -> None:
        """What the database knows of the item's patient, study and instance."""
        owner = f"patient record {item.patient_pk}"
        self.add("PatientID", item.patient_id, owner)
        self.add_name("PatientName", item.patient_name, owner)
        if item.birth_date:
            self.add_date("PatientBirthDate", item.birth_date, owner)
        self.add("AccessionNumber", item.accession, owner)
        for field, uid in (
            ("StudyInstanceUID", item.study_uid),
            ("SeriesInstanceUID", item.series_uid),
            ("SOPInstanceUID", item.sop_uid),
        ):
            self.add(field, uid, owner, "uid")

    def add_header(self, header: Dataset, owner: str) -> None:
        """The identifying attributes of a source DICOM header."""
        for keyword in NAME_KEYWORDS:
            for name in _texts(header.get(keyword)):
                self.add_name(keyword, name, owner)
        for keyword in TEXT_KEYWORDS:
            for text in _texts(header.get(keyword)):
                self.add(keyword, text, owner)
        for keyword in DATE_KEYWORDS:
            for text in _texts(header.get(keyword)):
                self.add_date(keyword, text, owner)
        for keyword in UID_KEYWORDS:
            for uid in _texts(header.get(keyword)):
                self.add(keyword, uid, owner, "uid")
        for keyword in DEVICE_KEYWORDS:
            self.device_values.update(v.lower() for v in _texts(header.get(keyword)))


def collect(items: Iterable[ExportItem], headers: dict[str, Dataset]) -> IdentifierSet:
    """Every identifying value of `items` and of their source headers (keyed by file path)."""
    found = IdentifierSet()
    for item in items:
        found.add_item(item)
        header = headers.get(item.file_path)
        if header is not None:
            found.add_header(header, f"patient record {item.patient_pk}")
    return found
