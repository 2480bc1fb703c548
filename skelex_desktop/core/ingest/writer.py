"""The single database writer of an import: one transaction per batch of decoded files.

Within a batch, frames already in the database (or earlier in the batch) become duplicates;
patients, studies and series are found or created (a few queries per batch); images and the
file results are added with multi-row INSERTs and the job's counters advanced, all in the same
transaction, so a cancelled or killed import never leaves half a file behind. A batch the database refuses is retried file by file.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

from sqlalchemy import Table, insert, select, tuple_, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import (
    Base,
    Image,
    ImportFileResult,
    ImportJob,
    Patient,
    Series,
    Study,
)
from skelex_desktop.core.domain import ImportOutcome
from skelex_desktop.core.ingest.image_paths import stored_image_path
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
        planned: list[tuple[DecodedFile, ImportOutcome, str, list[tuple[str, int]]]] = []
        additions: list[tuple[DecodedFile, list[ImageRecord], str]] = []
        claimed: set[tuple[str, int]] = set(existing)
        for item in items:
            outcome, reason = item.outcome, item.reason
            keys: list[tuple[str, int]] = []  # the frames this file's result points at
            if outcome == ImportOutcome.DUPLICATE:
                keys = list(item.duplicate_keys)
            elif outcome == ImportOutcome.IMPORTED:
                keys = [(r.sop_instance_uid, r.frame) for r in item.images]
                fresh = [r for r in item.images if (r.sop_instance_uid, r.frame) not in claimed]
                if not fresh:
                    outcome = ImportOutcome.DUPLICATE
                else:
                    try:
                        file_path = self._file_path(item)
                    except OSError as exc:
                        outcome, keys = ImportOutcome.FAILED, []
                        reason = f"cannot copy into the store: {exc.strerror or exc}"
                    else:
                        additions.append((item, fresh, file_path))
                        claimed.update((r.sop_instance_uid, r.frame) for r in fresh)
            planned.append((item, outcome, reason, keys))
        new_ids = self._insert_images(session, additions)
        ids_of = {**existing, **new_ids}
        results: list[FileResult] = []
        counts = dict.fromkeys(ImportOutcome, 0)
        rows: list[dict[str, object]] = []
        for item, outcome, reason, keys in planned:
            ids = [ids_of[k] for k in keys if k in ids_of]
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
        session.execute(insert(_table(ImportFileResult)), rows)
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
        return results, len(new_ids)

    def _file_path(self, item: DecodedFile) -> str:
        """Where the image rows will point: the file in place (relative to the shared image
        folder when it lies under it), or its copy in the store."""
        if self.options.copy:
            return str(copy_into_store(self.options.data_dir, item.content_hash, Path(item.path)))
        return stored_image_path(item.path, self.db.image_root)

    def _insert_images(
        self, session: Session, additions: list[tuple[DecodedFile, list[ImageRecord], str]]
    ) -> dict[tuple[str, int], int]:
        """Every new frame of the batch in one multi-row INSERT; ids by (SOP UID, frame)."""
        if not additions:
            return {}
        series = self._series_ids(session, [item for item, _, _ in additions])
        rows: list[dict[str, object]] = []
        for item, records, file_path in additions:
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
        table = _table(Image)
        returned = session.execute(
            insert(table).returning(table.c.sop_instance_uid, table.c.frame, table.c.id), rows
        )
        return {(sop, frame): image_id for sop, frame, image_id in returned}

    def _series_ids(self, session: Session, items: list[DecodedFile]) -> dict[str, int]:
        """Ids of the series of `items`: existing ones are looked up; only for series that are
        new are their studies looked up or created, and only for new studies their patients
        (first item's details win when several share one). A few queries per batch."""
        series: dict[str, DecodedFile] = {}
        for item in items:
            assert item.patient and item.study and item.series
            if item.series.series_uid not in self._series:
                series.setdefault(item.series.series_uid, item)
        self._series.update(_find(session, Series.series_instance_uid, list(series)))
        series = {uid: item for uid, item in series.items() if uid not in self._series}
        if not series:
            return self._series
        studies: dict[str, DecodedFile] = {}
        for item in series.values():
            if item.study.study_uid not in self._studies:  # type: ignore[union-attr]
                studies.setdefault(item.study.study_uid, item)  # type: ignore[union-attr]
        self._studies.update(_find(session, Study.study_instance_uid, list(studies)))
        studies = {uid: item for uid, item in studies.items() if uid not in self._studies}
        if studies:
            patients: dict[str, DecodedFile] = {}
            for item in studies.values():
                if item.patient.patient_id not in self._patients:  # type: ignore[union-attr]
                    patients.setdefault(item.patient.patient_id, item)  # type: ignore[union-attr]
            self._patients.update(_find(session, Patient.patient_id, list(patients)))
            rows = {
                key: dict(vars(item.patient))
                for key, item in patients.items()
                if key not in self._patients
            }
            self._patients.update(_insert(session, Patient.patient_id, rows))
            rows = {
                uid: _row(item.study, "study_uid", "study_instance_uid")
                | {"patient_id": self._patients[item.patient.patient_id]}  # type: ignore[union-attr]
                for uid, item in studies.items()
            }
            self._studies.update(_insert(session, Study.study_instance_uid, rows))
        rows = {
            uid: _row(item.series, "series_uid", "series_instance_uid")
            | {"study_id": self._studies[item.study.study_uid]}  # type: ignore[union-attr]
            for uid, item in series.items()
        }
        self._series.update(_insert(session, Series.series_instance_uid, rows))
        return self._series


def _row(info: object, uid_field: str, uid_column: str) -> dict[str, object]:
    """A study or series record's fields as columns, its UID field renamed to the column."""
    row = dict(vars(info))
    row[uid_column] = row.pop(uid_field)
    return row


def _find(session: Session, key: InstrumentedAttribute[str], keys: list[str]) -> dict[str, int]:
    """Ids of the existing rows whose `key` column takes one of `keys`."""
    found: dict[str, int] = {}
    model = key.class_
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        found.update(
            (k, v) for k, v in session.execute(select(key, model.id).where(key.in_(chunk)))
        )
    return found


def _table(model: type[Base]) -> Table:
    """The Table a mapped class is declared on (SQLAlchemy types `__table__` as any FromClause;
    every model here maps one table)."""
    return cast(Table, model.__table__)


def _insert(
    session: Session, key: InstrumentedAttribute[str], rows: dict[str, dict[str, object]]
) -> dict[str, int]:
    """Insert `rows` (keyed by their `key` value) in one multi-row INSERT; their new ids."""
    if not rows:
        return {}
    table = key.class_.__table__
    returned = session.execute(
        insert(table).returning(table.c[key.key], table.c.id), list(rows.values())
    )
    return {k: v for k, v in returned}
