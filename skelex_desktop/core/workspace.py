"""Opening a workspace: settings -> database (migrated, backed up) -> seeded label schema.

A caller that only reads (`writes=False`: the CLI's worklist, label list, db info, ...) does not
write when the database is already at this version's schema: it neither waits for another
process's write lock nor needs write access, and a SQLite file this user cannot write opens
read-only. A caller that writes gets a message naming a read-only file up front instead of
SQLite's "attempt to write a readonly database" half-way through.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from skelex_desktop.core.db import audit
from skelex_desktop.core.db.engine import Database, DatabaseFileError, sqlite_path, writable
from skelex_desktop.core.db.migrate import (
    SchemaVersionError,
    UpgradeResult,
    check_known,
    current_revision,
    head_revision,
    upgrade,
)
from skelex_desktop.core.db.models import ImportJob, utcnow
from skelex_desktop.core.db.session_user import session_user
from skelex_desktop.core.domain import JobState
from skelex_desktop.core.ingest.importer import import_job_alive, remove_job_lock
from skelex_desktop.core.review.schema import seed_default_schema
from skelex_desktop.core.settings import Settings


@dataclass
class Workspace:
    """An opened database with its settings; what every command and the window work on."""

    settings: Settings
    db: Database
    upgrade: UpgradeResult

    @property
    def read_only(self) -> bool:
        return self.db.readonly

    def close(self) -> None:
        self.db.dispose()


def open_workspace(settings: Settings, writes: bool = True) -> Workspace:
    """Create or upgrade the database (backing it up first) and load the default schema.

    With `writes=False`, a database already at this version's schema revision is opened
    without writing anything, read-only when this process cannot write the SQLite file.
    """
    url = settings.database_url
    path = sqlite_path(url)
    if path is not None and path.exists() and not writable(path):
        if not writes:
            return _open_read_only(settings)
        raise DatabaseFileError(
            f"cannot write to {path}: the file or its folder is read-only for this user; make "
            "them writable (e.g. chmod u+w), or use the database only for reading "
            "(worklist, label list, db info)"
        )
    db = Database(url, image_root=settings.image_root_path)
    try:
        if not writes and (path is None or path.exists()):
            revision = current_revision(db.engine)
            check_known(url, revision)
            if revision == head_revision():
                _take_connected_reader(settings, db)
                return Workspace(settings, db, UpgradeResult(revision, revision, None))
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        _take_connected_reader(settings, db)
        result = upgrade(db.engine)
        with db.write() as session:
            seed_default_schema(session, who=settings.reader)
            fail_interrupted_imports(session, settings.data_dir)
    except BaseException:
        db.dispose()
        raise
    return Workspace(settings=settings, db=db, upgrade=result)


def _take_connected_reader(settings: Settings, db: Database) -> None:
    """On PostgreSQL the reader is the database's session user (the role this person logged
    in as), whatever the settings or --reader say: a name nobody can type for someone else."""
    with db.read() as session:
        user = session_user(session)
    if user is not None:
        settings.reader = user


def _open_read_only(settings: Settings) -> Workspace:
    url = settings.database_url
    db = Database(url, readonly=True, image_root=settings.image_root_path)
    try:
        revision = current_revision(db.engine)
        check_known(url, revision)
        if revision != head_revision():
            raise SchemaVersionError(
                f"{db.name} is read-only for this user and has schema revision {revision!r}; "
                f"this version reads revision {head_revision()!r} after an upgrade, which writes: "
                "make the file writable once and run `skelex-desktop db upgrade` (a backup is "
                "made first), or open it with the version that wrote it"
            )
    except BaseException:
        db.dispose()
        raise
    return Workspace(settings=settings, db=db, upgrade=UpgradeResult(revision, revision, None))


def fail_interrupted_imports(session: Session, data_dir: Path) -> int:
    """Import jobs still 'running' whose process is gone (it was killed): mark them failed,
    with the reason. A job whose importing process still holds its lock file in `data_dir`
    (an import running in another process, e.g. the CLI while the window opens) is left alone.

    Files they finished are kept (each batch was committed); only the job's state is fixed.
    """
    jobs = session.scalars(select(ImportJob).where(ImportJob.state == JobState.RUNNING)).all()
    failed = 0
    for job in jobs:
        if import_job_alive(data_dir, job.id):
            continue
        job.state = JobState.FAILED.value
        job.finished_at = job.finished_at or utcnow()
        audit.record(
            session,
            "skelex-desktop",
            "import.interrupted",
            "import_job",
            job.id,
            before={"state": "running"},
            after={"state": "failed", "reason": "the application stopped during the import"},
        )
        remove_job_lock(data_dir, job.id)
        failed += 1
    return failed
