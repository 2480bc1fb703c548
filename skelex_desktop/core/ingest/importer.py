"""`import_paths`: discover files, decode them in parallel, write them through one writer.

The ImportJob row is created first and finished last (completed, cancelled or failed); file
results and images are committed batch by batch, so the job's counters always match its
ImportFileResult rows. On cancel, decoded files are committed, the job is marked cancelled and
`Cancelled` is raised.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from sqlalchemy import select, text, update

from skelex_desktop.core.db import audit
from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Image, ImportJob, utcnow
from skelex_desktop.core.domain import JobState
from skelex_desktop.core.ingest.discover import discover
from skelex_desktop.core.ingest.parallel import decode_in_processes, decode_sequentially
from skelex_desktop.core.ingest.records import DecodedFile, FileTask
from skelex_desktop.core.ingest.report import ImportOptions, ImportReport
from skelex_desktop.core.ingest.thumbnails import THUMBNAILS_DIR
from skelex_desktop.core.ingest.worker import WorkerConfig, frame_key
from skelex_desktop.core.progress import Cancelled, Progress, check

FLUSH_SECONDS = 1.0


def _start_job(db: Database, paths: Sequence[Path], options: ImportOptions) -> int:
    with db.write() as session:
        job = ImportJob(
            sources=[str(p) for p in paths],
            copy_files=options.copy,
            reader=options.reader,
            state=str(JobState.RUNNING),
        )
        session.add(job)
        session.flush()
        return job.id


def _finish_job(db: Database, report: ImportReport, state: JobState, who: str) -> None:
    report.state = state
    with db.write() as session:
        session.execute(
            update(ImportJob)
            .where(ImportJob.id == report.job_id)
            .values(state=str(state), finished_at=utcnow())
        )
        audit.record(
            session,
            who=who or "system",
            action=f"import_{state}",
            entity="import_job",
            entity_id=report.job_id,
            after={
                "imported": report.imported,
                "duplicates": report.duplicates,
                "skipped": report.skipped,
                "failed": report.failed,
                "images_added": report.images_added,
            },
        )


def refresh_statistics(db: Database) -> None:
    """Let SQLite's planner see the new row counts (approximate ANALYZE, milliseconds), so
    worklist filters pick the most selective index. Other databases keep their own stats."""
    if db.engine.dialect.name != "sqlite":
        return
    with db.write() as session:
        session.execute(text("PRAGMA analysis_limit=1000"))
        session.execute(text("ANALYZE"))


def _known_frames(db: Database) -> frozenset[str]:
    """Every (SOP Instance UID, frame) in the database, so workers skip decoding duplicates."""
    with db.read() as session:
        rows = session.execute(select(Image.sop_instance_uid, Image.frame))
        return frozenset(frame_key(sop, frame) for sop, frame in rows)


def import_paths(
    db: Database,
    paths: Sequence[Path],
    options: ImportOptions,
    progress: Progress | None = None,
) -> ImportReport:
    """Import files, folders and DICOMDIRs; every file gets an outcome and a reason.

    Bad files never raise; `Cancelled` is raised (after committing finished files) when the
    progress object asks to stop.
    """
    from skelex_desktop.core.ingest.writer import BatchWriter

    paths = [Path(p) for p in paths]
    report = ImportReport(job_id=_start_job(db, paths, options))
    writer = BatchWriter(db, report.job_id, options)
    buffer: list[DecodedFile] = []

    def flush() -> None:
        report.files.extend(writer.write(buffer))
        report.images_added = writer.images_added
        buffer.clear()

    try:
        if progress is not None:
            progress.set_status("Scanning files")
        found = discover(paths, progress)
        if progress is not None:
            progress.set_total(len(found.tasks) + len(found.results))
            progress.set_status("Importing")
        buffer.extend(found.results)
        if progress is not None and found.results:
            progress.advance(len(found.results))
        check(progress)
        last_flush = time.monotonic()
        for decoded in _decode(found.tasks, db, options, progress):
            buffer.append(decoded)
            if progress is not None:
                progress.advance(1, current=decoded.path)
            if len(buffer) >= options.batch_size or time.monotonic() - last_flush > FLUSH_SECONDS:
                flush()
                last_flush = time.monotonic()
            check(progress)
        flush()
    except Cancelled:
        flush()
        _finish_job(db, report, JobState.CANCELLED, options.reader)
        raise
    except BaseException:
        try:
            flush()
        finally:
            _finish_job(db, report, JobState.FAILED, options.reader)
        raise
    _finish_job(db, report, JobState.COMPLETED, options.reader)
    if report.images_added:
        refresh_statistics(db)
    if progress is not None:
        progress.set_status(f"Import finished: {report.summary()}")
    return report


def _decode(
    tasks: list[FileTask], db: Database, options: ImportOptions, progress: Progress | None
) -> Iterator[DecodedFile]:
    thumbnails = Path(options.data_dir) / THUMBNAILS_DIR
    thumbnails.mkdir(parents=True, exist_ok=True)
    config = WorkerConfig(thumbnails_dir=str(thumbnails), known_keys=_known_frames(db))
    workers = min(options.worker_count(), max(1, len(tasks)))
    if workers == 1:
        return decode_sequentially(tasks, config, progress)
    return decode_in_processes(tasks, config, workers, progress)
