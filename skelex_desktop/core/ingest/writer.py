"""The single database writer of an import: one transaction per batch of decoded files.

Within a batch, frames already in the database (or earlier in the batch) become duplicates;
patients, studies and series are found or created; images and the file results are added and
the job's counters advanced, all in the same transaction, so a cancelled or killed import never
leaves half a file behind. A batch the database refuses is retried file by file.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Image, ImportFileResult, ImportJob, Patient, Series, Study
from skelex_desktop.core.domain import ImportOutcome
from skelex_desktop.core.ingest.records import DecodedFile
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
        planned: list[tuple[DecodedFile, ImportOutcome, str, list[Image], list[int]]] = []
        claimed: set[tuple[str, int]] = set(existing)
        for item in items:
            outcome, reason = item.outcome, item.reason
            new_images: list[Image] = []
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
                        new_images = self._images(session, item, fresh)
                    except OSError as exc:
                        outcome = ImportOutcome.FAILED
                        reason = f"cannot copy into the store: {exc.strerror or exc}"
                    claimed.update((r.sop_instance_uid, r.frame) for r in fresh)
            planned.append((item, outcome, reason, new_images, known_ids))
        session.flush()
        results: list[FileResult] = []
        counts = dict.fromkeys(ImportOutcome, 0)
        added = 0
        for item, outcome, reason, new_images, known_ids in planned:
            ids = [image.id for image in new_images] or known_ids
            added += len(new_images)
            counts[outcome] += 1
            session.add(
                ImportFileResult(
                    job_id=self.job_id,
                    path=item.path,
                    outcome=str(outcome),
                    reason=reason,
                    image_id=ids[0] if ids else None,
                )
            )
            results.append(FileResult(item.path, outcome, reason, ids))
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
        return results, added

    def _images(self, session: Session, item: DecodedFile, records: list) -> list[Image]:
        file_path = os.path.abspath(item.path)
        if self.options.copy:
            file_path = str(
                copy_into_store(self.options.data_dir, item.content_hash, Path(item.path))
            )
        series_id = self._series_id(session, item)
        images = [
            Image(
                series_id=series_id,
                file_path=file_path,
                content_hash=item.content_hash,
                **vars(record),
            )
            for record in records
        ]
        session.add_all(images)
        return images

    def _series_id(self, session: Session, item: DecodedFile) -> int:
        assert item.patient and item.study and item.series
        uid = item.series.series_uid
        if uid in self._series:
            return self._series[uid]
        series_id = session.scalar(select(Series.id).where(Series.series_instance_uid == uid))
        if series_id is None:
            info = item.series
            row = Series(
                study_id=self._study_id(session, item),
                series_instance_uid=uid,
                modality=info.modality,
                series_number=info.series_number,
                description=info.description,
            )
            session.add(row)
            session.flush()
            series_id = row.id
        self._series[uid] = series_id
        return series_id

    def _study_id(self, session: Session, item: DecodedFile) -> int:
        assert item.study
        uid = item.study.study_uid
        if uid in self._studies:
            return self._studies[uid]
        study_id = session.scalar(select(Study.id).where(Study.study_instance_uid == uid))
        if study_id is None:
            info = item.study
            row = Study(
                patient_id=self._patient_id(session, item),
                study_instance_uid=uid,
                study_date=info.study_date,
                accession_number=info.accession_number,
                description=info.description,
            )
            session.add(row)
            session.flush()
            study_id = row.id
        self._studies[uid] = study_id
        return study_id

    def _patient_id(self, session: Session, item: DecodedFile) -> int:
        assert item.patient
        key = item.patient.patient_id
        if key in self._patients:
            return self._patients[key]
        patient_id = session.scalar(select(Patient.id).where(Patient.patient_id == key))
        if patient_id is None:
            info = item.patient
            row = Patient(patient_id=key, name=info.name, birth_date=info.birth_date, sex=info.sex)
            session.add(row)
            session.flush()
            patient_id = row.id
        self._patients[key] = patient_id
        return patient_id
