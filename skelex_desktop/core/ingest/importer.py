"""`import_paths`: discover files, decode them in parallel, write them through one writer.

The ImportJob row is created first and finished last (completed, cancelled or failed); file
results and images are committed batch by batch, so the job's counters always match its
ImportFileResult rows. On cancel, decoded files are committed, the job is marked cancelled and
`Cancelled` is raised.

While a job runs, its process holds an exclusive lock on `data_dir/locks/import-<id>.lock`
(taken before the job row is committed), so another process opening the workspace (the window
during a CLI import) can tell a running import from one whose process was killed: the operating
system releases the lock of a dead process.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

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
LOCKS_DIR = "locks"


def job_lock_path(data_dir: Path, job_id: int) -> Path:
    return Path(data_dir) / LOCKS_DIR / f"import-{job_id}.lock"


def _try_lock(handle: IO[bytes]) -> bool:
    """Take an exclusive lock on the open file without waiting; False if another holds it."""
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _hold_job_lock(data_dir: Path, job_id: int) -> IO[bytes]:
    """The open, locked lock file of a job this process runs (closing it releases the lock)."""
    path = job_lock_path(data_dir, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "wb")  # noqa: SIM115 - held open for the whole job
    if not _try_lock(handle):
        handle.close()
        raise RuntimeError(f"the lock of import job {job_id} ({path}) is held by another process")
    return handle


def import_job_alive(data_dir: Path, job_id: int) -> bool:
    """Whether a process still runs job `job_id`: its lock file exists and is locked."""
    path = job_lock_path(data_dir, job_id)
    try:
        with open(path, "rb") as handle:
            return not _try_lock(handle)
    except OSError:  # no lock file: an older version's job, or another data folder's
        return False


def remove_job_lock(data_dir: Path, job_id: int) -> None:
    job_lock_path(data_dir, job_id).unlink(missing_ok=True)


def _start_job(
    db: Database, paths: Sequence[Path], options: ImportOptions
) -> tuple[int, IO[bytes]]:
    """The new job's id, and its lock, taken before the job is visible to other processes."""
    lock: IO[bytes] | None = None
    try:
        with db.write() as session:
            job = ImportJob(
                sources=[str(p) for p in paths],
                copy_files=options.copy,
                reader=options.reader,
                state=str(JobState.RUNNING),
            )
            session.add(job)
            session.flush()
            job_id = job.id
            lock = _hold_job_lock(options.data_dir, job_id)
    except BaseException:
        if lock is not None:
            _release_job_lock(lock, options.data_dir, job_id)
        raise
    return job_id, lock


def _release_job_lock(handle: IO[bytes], data_dir: Path, job_id: int) -> None:
    remove_job_lock(data_dir, job_id)
    handle.close()


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
    paths = [Path(p) for p in paths]
    job_id, lock = _start_job(db, paths, options)
    try:
        return _run_job(db, paths, options, progress, ImportReport(job_id=job_id))
    finally:
        _release_job_lock(lock, options.data_dir, job_id)


def _run_job(
    db: Database,
    paths: list[Path],
    options: ImportOptions,
    progress: Progress | None,
    report: ImportReport,
) -> ImportReport:
    from skelex_desktop.core.ingest.writer import BatchWriter

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
            if decoded is not None:  # None: a quarter second without a result
                buffer.append(decoded)
                if progress is not None:
                    progress.advance(1, current=decoded.path)
            due = time.monotonic() - last_flush > FLUSH_SECONDS
            if buffer and (len(buffer) >= options.batch_size or due):
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
) -> Iterator[DecodedFile | None]:
    thumbnails = Path(options.data_dir) / THUMBNAILS_DIR
    thumbnails.mkdir(parents=True, exist_ok=True)
    config = WorkerConfig(thumbnails_dir=str(thumbnails), known_keys=_known_frames(db))
    workers = min(options.worker_count(), max(1, len(tasks)))
    if workers == 1:
        return decode_sequentially(tasks, config, progress)
    return decode_in_processes(tasks, config, workers, progress)
