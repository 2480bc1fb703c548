"""Study ingest: DICOM (every transfer syntax pydicom, pylibjpeg and GDCM decode), DICOMDIR and
PNG/JPEG/TIFF into the database, decoded in parallel, with thumbnails and a per-file report.

The names below are loaded on first use, so a decoding worker process that imports
`skelex_desktop.core.ingest.worker` does not pay for the database layer it never uses.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from skelex_desktop.core.ingest.importer import import_paths
    from skelex_desktop.core.ingest.report import FileResult, ImportOptions, ImportReport

__all__ = ["FileResult", "ImportOptions", "ImportReport", "import_paths"]

_HOMES = {
    "import_paths": "skelex_desktop.core.ingest.importer",
    "FileResult": "skelex_desktop.core.ingest.report",
    "ImportOptions": "skelex_desktop.core.ingest.report",
    "ImportReport": "skelex_desktop.core.ingest.report",
}


def __getattr__(name: str) -> object:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
