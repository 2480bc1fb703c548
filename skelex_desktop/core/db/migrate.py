"""Schema versions: Alembic upgrades applied at start-up after a backup of the SQLite file.

On SQLite the upgrade runs with foreign-key enforcement off (the documented way to change a
table: batch migrations copy a table, drop the old one and rename the copy, and dropping a
parent table with enforcement on would cascade into its children), in one IMMEDIATE
transaction that is committed only when `PRAGMA foreign_key_check` finds nothing.
A database stamped with a revision this version does not know (written by a newer version)
is refused with a message, never touched.
"""

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

from skelex_desktop.core.db.engine import (
    DatabaseFileError,
    describe,
    explained,
    immediate,
    sqlite_path,
)

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


def known_revisions() -> set[str]:
    """Every schema revision this version of the application has a migration for."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return {revision.revision for revision in script.walk_revisions()}


class SchemaVersionError(DatabaseFileError):
    """The database's schema is not the one this version can use (newer, or needs an upgrade
    that cannot be made); the message names the file and the way out."""


def current_revision(engine: Engine) -> str | None:
    """The revision stamped in the database, or None for an empty database."""
    url = engine.url.render_as_string(hide_password=False)
    with explained(url), engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def check_known(url: str, revision: str | None) -> None:
    """Refuse a database written by a newer version (a revision we have no migration for)."""
    if revision is None or revision in known_revisions():
        return
    db_file = sqlite_path(url)
    backups = (
        f"; or restore the copy made before that version upgraded it, from "
        f"{db_file.parent / 'backups'} (its name carries revision {head_revision()})"
        if db_file is not None
        else ""
    )
    raise SchemaVersionError(
        f"{describe(url)} has schema revision {revision!r}, which this version of SKELEX "
        f"Desktop does not know (it knows up to {head_revision()!r}): the database was written "
        f"by a newer version; open it with that version{backups}"
    )


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
    check_known(url, before)
    wanted = head_revision() if target == "head" else target
    backup = None
    if before == wanted:
        return UpgradeResult(before, wanted, None)
    db_file = sqlite_path(url)
    if before is not None and db_file is not None and db_file.exists():
        with explained(url):
            backup = backup_sqlite(db_file, before)
    cfg = alembic_config(url)
    with explained(url):
        if engine.dialect.name == "sqlite":
            _upgrade_sqlite(engine, cfg, target)
        else:
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, target)
    after = current_revision(engine)
    assert after is not None
    return UpgradeResult(before, after, backup)


def _upgrade_sqlite(engine: Engine, cfg: Config, target: str) -> None:
    with immediate(engine).connect() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.execute("PRAGMA foreign_keys=OFF")  # outside a transaction, or it is ignored
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, target)
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(
                        f"the upgrade to {target} would break {len(broken)} references "
                        f"(first: {tuple(broken[0])}); nothing was changed"
                    )
        finally:
            raw.execute("PRAGMA foreign_keys=ON")
