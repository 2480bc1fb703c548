"""What the exported DICOM objects share: equipment, the private coding scheme, model UIDs."""

from __future__ import annotations

from typing import TypedDict

from highdicom.coding_schemes import CodingSchemeIdentificationItem
from highdicom.sr import CodedConcept
from pydicom.uid import generate_uid

from skelex_desktop import __version__
from skelex_desktop.core.export.selection import ModelInfo, TaskInfo

SCHEME = "99SKELEX"  # private coding scheme of the label schema (PS3.16 "99" prefix)
MANUFACTURER = "SKELEX"
MODEL_NAME = "SKELEX Desktop"
SOFTWARE_VERSION = __version__
DEVICE_SERIAL = "1"


class Equipment(TypedDict):
    """highdicom's equipment keywords."""

    manufacturer: str
    manufacturer_model_name: str
    software_versions: str
    device_serial_number: str


# The equipment of every derived object (SR, Parametric Map, SEG), as highdicom keywords.
EQUIPMENT: Equipment = {
    "manufacturer": MANUFACTURER,
    "manufacturer_model_name": MODEL_NAME,
    "software_versions": SOFTWARE_VERSION,
    "device_serial_number": DEVICE_SERIAL,
}


def coding_schemes() -> list[CodingSchemeIdentificationItem]:
    """The Coding Scheme Identification Sequence of an object using `99SKELEX` codes: a private
    scheme must be declared there (PS3.3 C.12.1.1.4)."""
    return [
        CodingSchemeIdentificationItem(
            designator=SCHEME,
            name="SKELEX Desktop label schema",
            responsible_organization=MANUFACTURER,
        )
    ]


NO_UNITS = CodedConcept("1", "UCUM", "no units")
UNCERTAIN = "uncertain"


def task_concept(task: TaskInfo) -> CodedConcept:
    return CodedConcept(task.name, SCHEME, (task.title or task.name)[:64])


def class_concept(task: TaskInfo, value: object) -> CodedConcept:
    """The coded answer of a classification task: class name, or `uncertain`."""
    text = str(value)
    if task.kind == "binary" and text in ("0", "1") and len(task.classes) == 2:
        text = task.classes[int(text)]
    return CodedConcept(f"{task.name}.{text}", SCHEME, text[:64])


def model_uid(model: ModelInfo) -> str:
    """A stable Device Observer UID for a model version (the same in every export)."""
    return str(generate_uid(entropy_srcs=["skelex-model", model.name, model.version]))
