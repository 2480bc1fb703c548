"""DICOM PS3.15 Table E.1-1 (Application Level Confidentiality Profile Attributes) as the
exporter applies it: the Basic Profile with the Retain Longitudinal Temporal Information with
Modified Dates and Retain Patient Characteristics options.

The table is data (resources/ps3_15_table_e1_1.json, the whole 2024 table with its source).
Each attribute's action, after the options, is resolved to one the exporter carries out:
X remove, Z empty, D a dummy value, K keep, and two that dicognito does afterwards: U (a new
UID, the same one for the same original in every file) and C for dates and times (shifted by
the export's secret offset). Where the table offers a choice the exporter takes X for X/D and
X/Z/D (institution, station, protocol: Type 3 in the radiograph IODs), Z for X/Z and Z/D (an
empty Type 2 attribute stays conformant); X/Z/U* sequences of references keep their items
with new UIDs. An option's C on something
other than a date (the patient characteristics Allergies, Patient State, Pre-Medication,
Special Needs) is not done: the Basic Profile's X applies. Private attributes, overlays and
curves are removed as a whole.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from pydicom.datadict import dictionary_VR, keyword_for_tag

from skelex_desktop.core.resources import resources_dir

TABLE_FILE = "ps3_15_table_e1_1.json"
TABLE_PATH: Path = resources_dir() / TABLE_FILE
DATE_VRS = frozenset({"DA", "DT", "TM"})
CHOICES = {"X/Z": "Z", "X/D": "X", "X/Z/D": "X", "Z/D": "Z", "X/Z/U*": "U"}
DUMMY_TEXT = "ANONYMIZED"


def table_rows() -> list[dict[str, str]]:
    """The rows of Table E.1-1: name, tag, basic, modified_dates, patient_characteristics."""
    content = json.loads(TABLE_PATH.read_text(encoding="utf-8"))
    rows: list[dict[str, str]] = content["rows"]
    return rows


def row_tag(row: dict[str, str]) -> int | None:
    """The tag of a row; None for repeating groups (50xx, 60xx) and private attributes."""
    text = row["tag"].strip("()").replace(",", "")
    try:
        return int(text, 16)
    except ValueError:
        return None


def vr_of(tag: int) -> str:
    """The attribute's VR from pydicom's dictionary (the first of a choice; UN when unknown)."""
    return dictionary_VR(tag).split(" or ")[0] if keyword_for_tag(tag) else "UN"


def effective_action(row: dict[str, str]) -> str:
    """One of X, Z, D, K, U, C: the row's action under our two options, choices resolved."""
    tag = row_tag(row)
    is_date = tag is not None and vr_of(tag) in DATE_VRS
    option = row["patient_characteristics"] or row["modified_dates"]
    action = option if option and (option == "K" or is_date) else row["basic"]
    return CHOICES.get(action, action)


@cache
def actions() -> dict[int, str]:
    """Tag -> effective action of every single-tag row of the table."""
    out: dict[int, str] = {}
    for row in table_rows():
        tag = row_tag(row)
        if tag is not None:
            out[tag] = effective_action(row)
    return out


FILE_META_REMOVED = (
    "SourceApplicationEntityTitle",
    "SendingApplicationEntityTitle",
    "ReceivingApplicationEntityTitle",
    "PrivateInformation",
    "PrivateInformationCreatorUID",
)


def is_overlay_or_curve(tag: int) -> bool:
    """Repeating groups 50xx (curves) and 60xx (overlays), removed as a whole."""
    group = tag >> 16
    return 0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF
