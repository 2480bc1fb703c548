"""Schema versions: Alembic upgrades applied at start-up after a backup of the SQLite file."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from skelex_desktop.core.db.engine import sqlite_path

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


@dataclass(frozen=True)
class UpgradeResult:
    """What `upgrade` did: the revisions before and after, and the backup it made, if any."""

    before: str | None
    after: str
    backup: Path | None


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    """The newest schema revision this version of the application knows."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "the migrations folder has no revisions"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision stamped in the database, or None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def backup_sqlite(db_file: Path, revision: str | None) -> Path:
    """A consistent copy of a (possibly WAL-mode) SQLite file in `backups/` beside it."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    target = db_file.parent / "backups" / f"{db_file.stem}-{revision or 'empty'}-{stamp}.sqlite3"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    src = sqlite3.connect(db_file)
    try:
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    partial.replace(target)
    return target


def upgrade(engine: Engine, target: str = "head") -> UpgradeResult:
    """Bring the schema to `target`; an existing SQLite file is backed up first."""
    url = engine.url.render_as_string(hide_password=False)
    before = current_revision(engine)
    wanted = head_revision() if target == "head" else target
    backup = None
    if before == wanted:
        return UpgradeResult(before, wanted, None)
    db_file = sqlite_path(url)
    if before is not None and db_file is not None and db_file.exists():
        backup = backup_sqlite(db_file, before)
    cfg = alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)
    after = current_revision(engine)
    assert after is not None
    return UpgradeResult(before, after, backup)
