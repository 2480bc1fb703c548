"""De-identification of one export: PS3.15 Basic Profile with consistent pseudonyms.

One `Deidentifier` serves a whole export, so every file, table row and derived DICOM object of
the export uses the same pseudonyms: patients become `P0001`, `P0002`, ... (also their DICOM
Patient ID and Patient's Name), readers `R01`, `R02`, ...; UIDs are remapped and dates shifted by
one secret offset (dicognito, seeded with a random per-export secret that is never written).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import dicognito
from dicognito.anonymizer import Anonymizer
from dicognito.element_anonymizer import ElementAnonymizer
from pydicom import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence

from skelex_desktop.core.export.profile import (
    DUMMY_TEXT,
    FILE_META_REMOVED,
    actions,
    is_overlay_or_curve,
)

# DICOM PS3.16 CID 7050 de-identification method codes
PROFILE_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    ("113108", "Retain Patient Characteristics Option"),
)
METHOD = "PS3.15 Basic Profile; dicognito {version}; SKELEX Desktop"
PSEUDONYMISED = ("PatientID", "PatientName")  # Z in the table; they get the patient pseudonym
NUMERIC_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "IS", "DS"})
BINARY_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN"})


class _PatientNames(ElementAnonymizer):
    """Patient ID and name become the export's patient pseudonym; every other name is emptied
    (but the profile's dummy name, D in the table, stays)."""

    def __init__(self) -> None:
        self.code = ""

    def __call__(self, dataset: Dataset, data_element: DataElement) -> bool:
        if data_element.keyword == "PatientID":
            data_element.value = self.code
            return True
        if data_element.keyword == "PatientName":
            data_element.value = f"ANONYMOUS^{self.code}" if self.code else ""
            return True
        if data_element.VR == "PN" and str(data_element.value) != DUMMY_TEXT:
            data_element.value = ""
            return True
        return False

    def describe_actions(self) -> Iterator[str]:
        yield "Replace PatientID and PatientName with the export's patient pseudonym"
        yield "Empty every other person name"


class Deidentifier:
    """Pseudonyms and DICOM de-identification shared by every writer of one export."""

    def __init__(self, secret: str | None = None) -> None:
        self._names = _PatientNames()
        self._anonymizer = Anonymizer(seed=secret or secrets.token_hex(32))
        self._anonymizer.add_element_handler(self._names)
        self._actions = actions()
        self._patients: dict[int, str] = {}
        self._readers: dict[str, str] = {}
        self._uids: dict[str, str] = {}

    @property
    def method(self) -> str:
        return METHOD.format(version=dicognito.__version__)

    def patient(self, patient_pk: int) -> str:
        """The pseudonym of a patient (database key), assigned in order of first use."""
        if patient_pk not in self._patients:
            self._patients[patient_pk] = f"P{len(self._patients) + 1:04d}"
        return self._patients[patient_pk]

    def reader(self, name: str) -> str:
        """The pseudonym of a reader name (empty stays empty)."""
        if not name:
            return ""
        if name not in self._readers:
            self._readers[name] = f"R{len(self._readers) + 1:02d}"
        return self._readers[name]

    def uid(self, original: str) -> str:
        """The remapped UID, the same one dicognito writes into the DICOM files."""
        if original not in self._uids:
            probe = Dataset()
            probe.file_meta = FileMetaDataset()
            probe.SOPInstanceUID = original
            self._names.code = ""
            self._anonymizer.anonymize(probe)
            self._uids[original] = str(probe.SOPInstanceUID)
        return self._uids[original]

    def dataset(self, ds: Dataset, patient_pk: int) -> None:
        """De-identify `ds` in place (file meta included) for the patient with key `patient_pk`."""
        ds.remove_private_tags()
        self._strip(ds)
        meta = getattr(ds, "file_meta", None)
        if meta is None:
            ds.file_meta = meta = FileMetaDataset()
        for keyword in FILE_META_REMOVED:
            if keyword in meta:
                delattr(meta, keyword)
        self._names.code = self.patient(patient_pk)
        self._anonymizer.anonymize(ds)
        ds.DeidentificationMethod = self.method
        ds.DeidentificationMethodCodeSequence = Sequence([_code(v, m) for v, m in PROFILE_CODES])
        ds.PatientIdentityRemoved = "YES" if ds.get("BurnedInAnnotation", "YES") == "NO" else "NO"
        ds.LongitudinalTemporalInformationModified = "MODIFIED"

    def _strip(self, ds: Dataset) -> None:
        """Carry out the table's X, Z and D actions and remove private attributes, overlays and
        curves, recursively; U and C (dates) are dicognito's, K stays."""
        for tag in list(ds.keys()):
            action = self._actions.get(int(tag), "")
            if action == "X" or is_overlay_or_curve(int(tag)):
                del ds[tag]
                continue
            element = ds[tag]
            if action == "Z" and element.keyword not in PSEUDONYMISED:
                element.value = _empty(element.VR)
            elif action == "D":
                element.value = _dummy(element.VR, element.value)
            elif action == "U" and element.keyword.endswith("ClassUID") and element.value:
                element.value = self.uid(str(element.value))  # dicognito keeps class UIDs
            if element.VR == "SQ":
                for item in element.value:
                    self._strip(item)


def _empty(vr: str) -> object:
    """A zero-length value of `vr`."""
    if vr == "SQ":
        return Sequence([])
    return None if vr in NUMERIC_VRS else (b"" if vr in BINARY_VRS else "")


def _dummy(vr: str, value: object) -> object:
    """A non-empty value of `vr` that carries nothing of the original (a sequence keeps its items,
    which the profile then de-identifies; UIDs are replaced by dicognito)."""
    if vr in ("SQ", "UI"):
        return value
    if vr in NUMERIC_VRS:
        return "0" if vr in ("IS", "DS") else 0
    if vr in BINARY_VRS:
        return DUMMY_TEXT.encode()
    return "urn:anonymized" if vr == "UR" else DUMMY_TEXT


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item
