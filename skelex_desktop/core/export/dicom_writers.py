"""Build the DICOM objects of one exported image (SR, Parametric Map, SEG) as file bytes.

The exporter hands each builder a `DicomContext`: what the whole export shares (tasks, models,
one series per object kind, the reader-name mapping), how to find an error map, and where to
note an object that was not written. A source that cannot be referenced (no Study, Series or SOP
Instance UID or SOP Class UID, a retired SOP Class) or that highdicom cannot derive an object
from gets no object of that kind, with the reason in the export's notes (never a source value:
the notes are scanned for identities) and the details in the log; the rest of the export goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from skelex_desktop.core.export.dicom_pm import build_pm, load_error_map
from skelex_desktop.core.export.dicom_seg import build_seg
from skelex_desktop.core.export.dicom_source import unusable
from skelex_desktop.core.export.dicom_sr import build_sr
from skelex_desktop.core.export.images import dicom_bytes
from skelex_desktop.core.export.options import ExportError
from skelex_desktop.core.export.record import ExportRecord
from skelex_desktop.core.export.selection import ModelInfo, TaskInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DicomContext:
    """What the DICOM builders of one export share."""

    tasks: list[TaskInfo]
    models: dict[int, ModelInfo]
    series: Mapping[str, str]  # object kind ("dicom-sr", ...) -> its Series Instance UID
    reader: Callable[[str], str]  # a reader's name as exported (de-identified or not)
    error_map_path: Callable[[str], Path]  # a stored error-map path -> the file to read
    skip: Callable[[str], None]  # note why an object was not written


def _sr(run: DicomContext, record: ExportRecord, ds: Dataset, instance: int) -> Dataset | None:
    return build_sr(
        ds, record.item, run.tasks, run.models, run.reader, run.series["dicom-sr"], instance
    )


def _pm(run: DicomContext, record: ExportRecord, ds: Dataset, instance: int) -> Dataset | None:
    for raw, model_id in record.item.error_maps:
        path = run.error_map_path(raw)
        if path.is_file():
            error_map = load_error_map(path, int(ds.Rows), int(ds.Columns))
            return build_pm(
                ds, error_map, run.models.get(model_id), run.series["dicom-pm"], instance
            )
    run.skip("no error map: no Parametric Map written")
    return None


def _seg(run: DicomContext, record: ExportRecord, ds: Dataset, instance: int) -> Dataset | None:
    seg = build_seg(ds, record.item, run.tasks, run.series["dicom-seg"], instance)
    if seg is None:
        run.skip("no regions: no SEG written")
    return seg


BUILDERS = {"dicom-sr": _sr, "dicom-pm": _pm, "dicom-seg": _seg}


def build(
    kind: str, run: DicomContext, record: ExportRecord, ds: Dataset, instance: int
) -> bytes | None:
    """The file bytes of the `kind` object for `record`, or None when it was not written (the
    reason noted)."""
    reason = unusable(ds)
    if reason is not None:
        run.skip(f"no {kind} written: {reason}")
        return None
    try:
        obj = BUILDERS[kind](run, record, ds, instance)
    except ExportError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError, RuntimeError) as exc:
        log.warning("%s of image %s not written: %r", kind, record.stem, exc)
        run.skip(f"no {kind} written: highdicom could not build it ({type(exc).__name__})")
        return None
    return None if obj is None else dicom_bytes(obj)
