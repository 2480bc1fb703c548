"""Writers of labelled sets (CSV/JSONL, COCO, YOLO, HF imagefolder, DICOM) and de-identification.

`export_labelled_set(db, ExportOptions(...), progress)` is the one entry point; see
docs/EXPORT.md for the formats, the split and the de-identification guarantees.
"""

from skelex_desktop.core.export.exporter import ExportResult, export_labelled_set
from skelex_desktop.core.export.options import (
    DICOM_FORMATS,
    FORMATS,
    IMAGE_MODES,
    SPLITS,
    STATUSES,
    ExportError,
    ExportOptions,
    Selection,
    parse_formats,
    parse_split,
)

__all__ = [
    "DICOM_FORMATS",
    "FORMATS",
    "IMAGE_MODES",
    "SPLITS",
    "STATUSES",
    "ExportError",
    "ExportOptions",
    "ExportResult",
    "Selection",
    "export_labelled_set",
    "parse_formats",
    "parse_split",
]
