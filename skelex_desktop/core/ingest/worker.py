"""Decoding one file in a worker process: read, hash, validate, decode every frame, thumbnail.

`process_task` never raises: every problem becomes a skipped or failed `DecodedFile`.
A pool worker exits at once when the importing process is gone (`init_worker`'s lifeline).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import warnings
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import cv2

from skelex_desktop.core.domain import ImportOutcome
from skelex_desktop.core.ingest.dicom_source import (
    decode_frames,
    dicom_subjects,
    image_attributes,
    parse_dicom,
    prefer_single_threaded_decoders,
)
from skelex_desktop.core.ingest.frame import Frame
from skelex_desktop.core.ingest.layout import deterministic_uid, raster_subjects
from skelex_desktop.core.ingest.limits import IngestError, failure, fit_columns
from skelex_desktop.core.ingest.pixels import classify, read_file
from skelex_desktop.core.ingest.raster_source import decode_raster
from skelex_desktop.core.ingest.records import DecodedFile, FileTask, ImageRecord
from skelex_desktop.core.ingest.thumbnails import thumbnail_path, write_thumbnail


@dataclass(frozen=True)
class WorkerConfig:
    """What every worker needs: where thumbnails go and which frames the database has."""

    thumbnails_dir: str
    known_keys: frozenset[str] = frozenset()


_CONFIG: WorkerConfig | None = None


def frame_key(sop_instance_uid: str, frame: int) -> str:
    return f"{sop_instance_uid}#{frame}"


def exit_with_parent(lifeline: Connection) -> None:
    """Block until the parent's end of `lifeline` closes (nothing is ever sent), then end this
    process at once, whatever its main thread is doing (decoding, waiting for a task)."""
    with contextlib.suppress(EOFError, OSError):
        lifeline.recv_bytes()
    os._exit(1)


def init_worker(config: WorkerConfig, lifeline: Connection | None = None) -> None:
    """Process-pool initializer: keep the configuration, silence decoder warnings, and watch
    the `lifeline` to the importing process (exit when it dies)."""
    global _CONFIG
    _CONFIG = config
    if lifeline is not None:
        threading.Thread(
            target=exit_with_parent, args=(lifeline,), name="lifeline", daemon=True
        ).start()
    warnings.simplefilter("ignore")
    cv2.setNumThreads(1)  # one process per core already; nested thread pools only contend
    prefer_single_threaded_decoders()


def process_task(task: FileTask, config: WorkerConfig | None = None) -> DecodedFile:
    """Decode one file into records for the writer; never raises."""
    config = config or _CONFIG
    if config is None:
        return DecodedFile(task.path, ImportOutcome.FAILED, "worker not initialised")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _process(task, config)
    except BaseException as exc:  # noqa: BLE001 - a decoder bug must not stop the import
        outcome, reason = failure(exc)
        return DecodedFile(task.path, outcome, reason)


def _all_known(keys: list[tuple[str, int]], config: WorkerConfig) -> bool:
    return bool(keys) and all(frame_key(sop, i) in config.known_keys for sop, i in keys)


def _thumbnail(frame: Frame, sop: str, index: int, config: WorkerConfig) -> str:
    dest = thumbnail_path(Path(config.thumbnails_dir), sop, index)
    try:
        return str(write_thumbnail(frame, dest))
    except OSError as exc:
        raise IngestError(f"cannot write thumbnail: {exc.strerror or exc}") from exc


def _record(
    frame: Frame,
    sop: str,
    index: int,
    attrs: dict[str, str],
    modality: str,
    syntax: str,
    thumb: str,
) -> ImageRecord:
    spacing = frame.pixel_spacing
    rows, cols = frame.shape
    return ImageRecord(
        sop_instance_uid=sop,
        frame=index,
        rows=rows,
        cols=cols,
        bits_stored=frame.bits_stored,
        photometric=frame.photometric,
        modality=modality,
        body_part=attrs["body_part"],
        view=attrs["view"],
        laterality=attrs["laterality"],
        pixel_spacing_row=spacing[0] if spacing else None,
        pixel_spacing_col=spacing[1] if spacing else None,
        spacing_source=frame.spacing_source,
        calibration=str(frame.calibration),
        window_center=frame.window[0],
        window_width=frame.window[1],
        transfer_syntax=syntax,
        thumbnail_path=thumb,
    )


def _process(task: FileTask, config: WorkerConfig) -> DecodedFile:
    path = Path(task.path)
    data = read_file(path)
    digest = hashlib.sha256(data).hexdigest()
    kind = classify(data, path)
    if kind == "dicom":
        return _process_dicom(task, data, digest, config)
    subjects = raster_subjects(path, Path(task.root), digest)
    sop = subjects.sop_instance_uid
    attrs = {
        "body_part": subjects.body_part,
        "view": subjects.view,
        "laterality": subjects.laterality,
    }
    notes = fit_columns(subjects.patient, subjects.study, subjects.series, sop, attrs, dicom=False)
    result = DecodedFile(
        task.path,
        ImportOutcome.IMPORTED,
        "; ".join(notes),
        digest,
        subjects.patient,
        subjects.study,
        subjects.series,
    )
    if _all_known([(sop, 0)], config):
        result.outcome, result.duplicate_keys = ImportOutcome.DUPLICATE, [(sop, 0)]
        return result
    frame = decode_raster(
        data, kind, subjects.pixel_spacing, subjects.calibration, subjects.spacing_source
    )
    thumb = _thumbnail(frame, sop, 0, config)
    result.images.append(_record(frame, sop, 0, attrs, subjects.series.modality, kind, thumb))
    return result


def _process_dicom(task: FileTask, data: bytes, digest: str, config: WorkerConfig) -> DecodedFile:
    source = parse_dicom(data, Path(task.path))
    patient, study, series = dicom_subjects(source, digest)
    sop = source.sop_instance_uid or deterministic_uid("sop", digest)
    attrs = image_attributes(source.ds)
    notes = fit_columns(patient, study, series, sop, attrs)
    keys = [(sop, i) for i in range(source.frames)]
    reason = "; ".join(n for n in (source.note, *notes) if n)
    result = DecodedFile(task.path, ImportOutcome.IMPORTED, reason, digest, patient, study, series)
    if _all_known(keys, config):
        result.outcome, result.duplicate_keys = ImportOutcome.DUPLICATE, keys
        return result
    syntax = str(source.transfer_syntax)
    for index, frame in decode_frames(source):
        thumb = _thumbnail(frame, sop, index, config)
        result.images.append(_record(frame, sop, index, attrs, series.modality, syntax, thumb))
    return result
