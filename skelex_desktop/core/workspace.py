"""Opening a workspace: settings -> database (migrated, backed up) -> seeded label schema."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from skelex_desktop.core.db import audit
from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.migrate import UpgradeResult, upgrade
from skelex_desktop.core.db.models import ImportJob, utcnow
from skelex_desktop.core.domain import JobState
from skelex_desktop.core.review.schema import seed_default_schema
from skelex_desktop.core.settings import Settings


@dataclass
class Workspace:
    """An opened database with its settings; what every command and the window work on."""

    settings: Settings
    db: Database
    upgrade: UpgradeResult

    def close(self) -> None:
        self.db.dispose()


def open_workspace(settings: Settings) -> Workspace:
    """Create or upgrade the database (backing it up first) and load the default schema."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.database_url)
    result = upgrade(db.engine)
    with db.write() as session:
        seed_default_schema(session, who=settings.reader)
        fail_interrupted_imports(session)
    return Workspace(settings=settings, db=db, upgrade=result)


def fail_interrupted_imports(session: Session) -> int:
    """Import jobs still 'running' at start-up were killed: mark them failed, with the reason.

    Files they finished are kept (each batch was committed); only the job's state is fixed.
    """
    jobs = session.scalars(select(ImportJob).where(ImportJob.state == JobState.RUNNING)).all()
    for job in jobs:
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
    return len(jobs)
