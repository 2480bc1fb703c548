"""What the identity scan tolerates: the export's own words where our writers put them, and
organisation names inside the device attributes that the Basic Profile keeps.

Everything else stays fail-closed; docs/EXPORT.md "De-identification" states the rules.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from skelex_desktop.core.export.identities import DEVICE_KEYWORDS, ORGANISATION_FIELDS, Identifier
from skelex_desktop.core.export.options import SPLITS

SPLIT_WORDS = (*SPLITS, "validation")  # "validation": the Hugging Face name of `val`
TOOL_WORDS = ("skelex", "desktop", "export")  # "SKELEX Desktop export (test)": COCO's info
LAYOUT_WORDS = (  # folder, file and suffix names of the export layout (docs/EXPORT.md)
    "images",
    "labels",
    "annotations",
    "instances",
    "dicom",
    "sr",
    "pm",
    "seg",
    "manifest",
    "metadata",
    "studies",
    "data",
    "json",
    "jsonl",
    "csv",
    "yaml",
    "txt",
    "png",
    "dcm",
    "parquet",
)
# fields whose value our writers fill with split, task or class names or paths of our files
# (YOLO's data.yaml: `test: images/test`)
VOCABULARY_FIELDS = frozenset(
    {
        *SPLIT_WORDS,
        "file",
        "file_name",
        "split",
        "task",
        "name",
        "names",
        "title",
        "classes",
        "stratify_by",
        "description",
    }
)
# coded elements of the DICOM objects we build (SR, SEG, Parametric Map) that hold task names
CODED_ELEMENTS = frozenset(
    {"CodeValue", "LongCodeValue", "CodeMeaning", "SegmentLabel", "SegmentDescription"}
)
DERIVED_DICOM_DIR = "dicom/"
PSEUDONYM = r"P\d{4}(?:_\d{5})?|R\d{2}"


@dataclass(frozen=True)
class Place:
    """Where a text stands in an exported file.

    role: "path" (a file name), "key" (a JSON key, a CSV header cell, a Parquet column name),
    "value" (a JSON value, CSV cell or YAML value under `field`), "element" (a DICOM element
    `field`), "raw" (anything else: PNG chunks, unparsed bytes, lines of a file that did not
    parse).
    """

    file: str
    role: str
    field: str = ""


class Allowances:
    """Decides whether one hit of the scan is the export's own word or a retained device name."""

    def __init__(self, task_words: Iterable[str], device_values: Iterable[str]) -> None:
        self.tasks = {w.lower() for w in task_words if w}
        self.own_words = {
            w.lower() for w in (*SPLIT_WORDS, *TOOL_WORDS, *LAYOUT_WORDS)
        } | self.tasks
        phrases = sorted(self.own_words, key=len, reverse=True)
        alternation = "|".join([PSEUDONYM, *(re.escape(p) for p in phrases)])
        self._own = re.compile(rf"(?<![0-9A-Za-z])(?:{alternation})(?![0-9A-Za-z])", re.I)
        self.device_values = {v.strip().lower() for v in device_values if v.strip()}

    @classmethod
    def for_export(cls, root: Path, device_values: Iterable[str]) -> Allowances:
        """The task and class names of the export's schema (its manifest.json, when written)."""
        return cls(_schema_words(root / "manifest.json"), device_values)

    def is_own_text(self, text: str) -> bool:
        """Whether `text` is made only of the export's own words, pseudonyms and punctuation."""
        rest = self._own.sub(" ", text)
        return not any(c.isalpha() for c in rest)

    def allows(self, place: Place, text: str, hit: str, ident: Identifier) -> bool:
        """Whether the identifier `ident`, found as `hit` in `text` at `place`, may stay."""
        word = hit.lower()
        if place.role == "element":
            if ident.field in ORGANISATION_FIELDS and place.field in DEVICE_KEYWORDS:
                return text.strip().lower() in self.device_values
            return (
                place.file.startswith(DERIVED_DICOM_DIR)
                and place.field in CODED_ELEMENTS
                and word in self.tasks
                and self.is_own_text(text)
            )
        if ident.kind != "text" or not word.isalpha():
            return False  # UIDs, dates and numeric IDs are never the export's own words
        if place.role == "key":
            return True
        if place.role == "path":
            return word in self.own_words and self.is_own_text(text)
        if place.role == "value":
            field = place.field.lower()
            vocabulary = field in VOCABULARY_FIELDS or field in self.tasks
            vocabulary = vocabulary or (field.startswith("ai_") and field[3:] in self.tasks)
            return vocabulary and word in self.own_words and self.is_own_text(text)
        return False


def _schema_words(manifest: Path) -> list[str]:
    try:
        content: Any = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    words: list[str] = []
    schema = content.get("schema") if isinstance(content, dict) else None
    for task in schema if isinstance(schema, list) else []:
        if not isinstance(task, dict):
            continue
        words += [str(task.get(k) or "") for k in ("name", "title")]
        classes = task.get("classes")
        words += [str(c) for c in classes] if isinstance(classes, list) else []
    return words
