"""The single database writer of an import: one transaction per batch of decoded files.

Within a batch, frames already in the database (or earlier in the batch) become duplicates;
patients, studies and series are found or created (a few queries per batch); images and the
file results are added with multi-row INSERTs and the job's counters advanced, all in the same
transaction, so a cancelled or killed import never leaves half a file behind. A batch the database refuses is retried file by file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Image, ImportFileResult, ImportJob, Patient, Series, Study
from skelex_desktop.core.domain import ImportOutcome
from skelex_desktop.core.ingest.records import DecodedFile, ImageRecord
from skelex_desktop.core.ingest.report import FileResult, ImportOptions
from skelex_desktop.core.ingest.store import copy_into_store

_CHUNK = 400  # SQLite bound-parameter budget per IN query


class BatchWriter:
    """Writes decoded files of one job, batch by batch, through `Database.write()`."""

    def __init__(self, db: Database, job_id: int, options: ImportOptions) -> None:
        self.db = db
        self.job_id = job_id
        self.options = options
        self.images_added = 0
        self._patients: dict[str, int] = {}
        self._studies: dict[str, int] = {}
        self._series: dict[str, int] = {}

    def write(self, items: list[DecodedFile]) -> list[FileResult]:
        """Commit `items` as one transaction (file by file if the batch is refused)."""
        if not items:
            return []
        try:
            with self.db.write() as session:
                results, added = self._write(session, items)
        except Exception:
            self._forget()
            results, added = [], 0
            for item in items:
                results.extend(self._write_alone(item))
            return results
        self.images_added += added
        return results

    def _write_alone(self, item: DecodedFile) -> list[FileResult]:
        try:
            with self.db.write() as session:
                results, added = self._write(session, [item])
            self.images_added += added
            return results
        except Exception as exc:
            self._forget()
            failed = DecodedFile(item.path, ImportOutcome.FAILED, f"database error: {exc}"[:500])
            with self.db.write() as session:
                results, _ = self._write(session, [failed])
            return results

    def _forget(self) -> None:
        """Drop cached ids: the transaction that created them may have been rolled back."""
        self._patients.clear()
        self._studies.clear()
        self._series.clear()

    def _existing(self, session: Session, items: list[DecodedFile]) -> dict[tuple[str, int], int]:
        keys = {(r.sop_instance_uid, r.frame) for item in items for r in item.images}
        keys.update(k for item in items for k in item.duplicate_keys)
        found: dict[tuple[str, int], int] = {}
        ordered = sorted(keys)
        for start in range(0, len(ordered), _CHUNK):
            chunk = ordered[start : start + _CHUNK]
            rows = session.execute(
                select(Image.sop_instance_uid, Image.frame, Image.id).where(
                    tuple_(Image.sop_instance_uid, Image.frame).in_(chunk)
                )
            )
            found.update({(sop, frame): image_id for sop, frame, image_id in rows})
        return found

    def _write(self, session: Session, items: list[DecodedFile]) -> tuple[list[FileResult], int]:
        existing = self._existing(session, items)
        planned: list[tuple[DecodedFile, ImportOutcome, str, list[int]]] = []
        additions: list[tuple[int, DecodedFile, list[ImageRecord], str]] = []
        claimed: set[tuple[str, int]] = set(existing)
        for item in items:
            outcome, reason = item.outcome, item.reason
            known_ids: list[int] = []
            if outcome == ImportOutcome.DUPLICATE:
                known_ids = [existing[k] for k in item.duplicate_keys if k in existing]
            elif outcome == ImportOutcome.IMPORTED:
                fresh = [r for r in item.images if (r.sop_instance_uid, r.frame) not in claimed]
                known_ids = [
                    existing[(r.sop_instance_uid, r.frame)]
                    for r in item.images
                    if (r.sop_instance_uid, r.frame) in existing
                ]
                if not fresh:
                    outcome = ImportOutcome.DUPLICATE
                else:
                    try:
                        file_path = self._file_path(item)
                    except OSError as exc:
                        outcome = ImportOutcome.FAILED
                        reason = f"cannot copy into the store: {exc.strerror or exc}"
                    else:
                        additions.append((len(planned), item, fresh, file_path))
                    claimed.update((r.sop_instance_uid, r.frame) for r in fresh)
            planned.append((item, outcome, reason, known_ids))
        new_ids = self._insert_images(session, additions)
        results: list[FileResult] = []
        counts = dict.fromkeys(ImportOutcome, 0)
        rows: list[dict[str, object]] = []
        for index, (item, outcome, reason, known_ids) in enumerate(planned):
            ids = new_ids.get(index) or known_ids
            counts[outcome] += 1
            rows.append(
                {
                    "job_id": self.job_id,
                    "path": item.path,
                    "outcome": str(outcome),
                    "reason": reason,
                    "image_id": ids[0] if ids else None,
                }
            )
            results.append(FileResult(item.path, outcome, reason, ids))
        session.execute(insert(ImportFileResult), rows)
        session.execute(
            update(ImportJob)
            .where(ImportJob.id == self.job_id)
            .values(
                imported=ImportJob.imported + counts[ImportOutcome.IMPORTED],
                duplicates=ImportJob.duplicates + counts[ImportOutcome.DUPLICATE],
                skipped=ImportJob.skipped + counts[ImportOutcome.SKIPPED],
                failed=ImportJob.failed + counts[ImportOutcome.FAILED],
            )
        )
        return results, sum(len(ids) for ids in new_ids.values())

    def _file_path(self, item: DecodedFile) -> str:
        """Where the image rows will point: the file in place, or its copy in the store."""
        if self.options.copy:
            return str(copy_into_store(self.options.data_dir, item.content_hash, Path(item.path)))
        return os.path.abspath(item.path)

    def _insert_images(
        self, session: Session, additions: list[tuple[int, DecodedFile, list[ImageRecord], str]]
    ) -> dict[int, list[int]]:
        """One multi-row INSERT for every new frame of the batch; ids per planned index."""
        if not additions:
            return {}
        series = self._series_ids(session, [item for _, item, _, _ in additions])
        rows: list[dict[str, object]] = []
        owners: list[int] = []
        for index, item, records, file_path in additions:
            assert item.series
            series_id = series[item.series.series_uid]
            for record in records:
                rows.append(
                    {
                        "series_id": series_id,
                        "file_path": file_path,
                        "content_hash": item.content_hash,
                        **vars(record),
                    }
                )
                owners.append(index)
        inserted = session.scalars(
            insert(Image).returning(Image.id, sort_by_parameter_order=True), rows
        ).all()
        ids: dict[int, list[int]] = {}
        for index, image_id in zip(owners, inserted, strict=True):
            ids.setdefault(index, []).append(image_id)
        return ids

    def _series_ids(self, session: Session, items: list[DecodedFile]) -> dict[str, int]:
        """Find or create the patients, studies and series of `items` (first item's details
        win when several share one), a few queries per level for the whole batch."""
        patients: dict[str, DecodedFile] = {}
        studies: dict[str, DecodedFile] = {}
        series: dict[str, DecodedFile] = {}
        for item in items:
            assert item.patient and item.study and item.series
            if item.patient.patient_id not in self._patients:
                patients.setdefault(item.patient.patient_id, item)
            if item.study.study_uid not in self._studies:
                studies.setdefault(item.study.study_uid, item)
            if item.series.series_uid not in self._series:
                series.setdefault(item.series.series_uid, item)
        rows = {key: dict(vars(item.patient)) for key, item in patients.items()}
        self._patients.update(_find_or_create(session, Patient, Patient.patient_id, rows))
        self._studies.update(
            _level(
                session,
                Study.study_instance_uid,
                studies,
                "study",
                "study_uid",
                "patient_id",
                lambda item: self._patients[item.patient.patient_id],
            )
        )
        self._series.update(
            _level(
                session,
                Series.series_instance_uid,
                series,
                "series",
                "series_uid",
                "study_id",
                lambda item: self._studies[item.study.study_uid],
            )
        )
        return self._series


def _level(
    session: Session,
    key: InstrumentedAttribute[str],
    items: dict[str, DecodedFile],
    info: str,
    uid_field: str,
    parent_column: str,
    parent_id: Callable[[DecodedFile], int],
) -> dict[str, int]:
    """Ids of the studies (or series) of `items`, keyed by UID, inserting the missing ones:
    each row is the item's `info` record with its UID field renamed to the column, plus the id
    of its parent patient (or study)."""
    rows: dict[str, dict] = {}
    for uid, item in items.items():
        row = dict(vars(getattr(item, info)))
        row[key.key] = row.pop(uid_field)
        row[parent_column] = parent_id(item)
        rows[uid] = row
    return _find_or_create(session, key.class_, key, rows)


def _find_or_create(
    session: Session, model: type, key: InstrumentedAttribute[str], rows: dict[str, dict]
) -> dict[str, int]:
    """Ids of the rows whose `key` values are the keys of `rows`; missing ones are inserted."""
    found: dict[str, int] = {}
    keys = list(rows)
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        found.update(
            (k, v) for k, v in session.execute(select(key, model.id).where(key.in_(chunk)))
        )
    missing = [rows[k] for k in keys if k not in found]
    if missing:
        found.update(
            (k, v) for k, v in session.execute(insert(model).returning(key, model.id), missing)
        )
    return found
