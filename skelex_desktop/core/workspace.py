"""Opening a workspace: settings -> database (migrated, backed up) -> seeded label schema."""

from __future__ import annotations

from dataclasses import dataclass

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.migrate import UpgradeResult, upgrade
from skelex_desktop.core.schema import seed_default_schema
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
    return Workspace(settings=settings, db=db, upgrade=result)
