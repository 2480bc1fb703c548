"""Study ingest: DICOM (every transfer syntax pydicom, pylibjpeg and GDCM decode), DICOMDIR and
PNG/JPEG/TIFF into the database, decoded in parallel, with thumbnails and a per-file report."""

from skelex_desktop.core.ingest.importer import import_paths
from skelex_desktop.core.ingest.report import FileResult, ImportOptions, ImportReport

__all__ = ["FileResult", "ImportOptions", "ImportReport", "import_paths"]
