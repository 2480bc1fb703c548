"""Engine and session factory: SQLite in WAL mode with foreign keys and a busy timeout.

All writes go through `Database.write()`, which serialises writers in this process and, on
SQLite, starts its transaction with `BEGIN IMMEDIATE`: the write lock is taken (waiting up to
the busy timeout for another process that holds it) before anything is read, so a writer never
fails at once with "database is locked" the way a deferred transaction that upgrades from
reading to writing does. Reads use their own sessions and plain (deferred) transactions, which
never wait: in WAL mode readers and the one writer do not block each other.

Commits are durable (`synchronous=FULL`): a decision that was reported stored survives a power
loss. bench/durability.py measures what that costs (docs/INGEST.md).

A database that cannot be used (not a database, read-only, locked too long, damaged) raises
`DatabaseFileError`, whose message names the file and the way out.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, unquote

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from skelex_desktop.core.db.models import AuditEvent

BUSY_TIMEOUT_MS = 30_000
SYNCHRONOUS = "FULL"
"""SQLite's `synchronous` for every connection; NORMAL (faster, may lose the last commits on a
power loss) is accepted only so that bench/durability.py can measure the difference."""

_BEGIN = "skelex_sqlite_begin"  # execution option: how a SQLite transaction begins


class DatabaseFileError(RuntimeError):
    """The database cannot be opened or used; the message names it and says what to do."""


def sqlite_path(url: str | URL) -> Path | None:
    """The database file of a file-backed SQLite URL (also a `file:` URI one), else None."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    if parsed.database.startswith("file:") and parsed.query.get("uri"):
        return Path(unquote(parsed.database.removeprefix("file:")))
    return Path(parsed.database)


def describe(url: str) -> str:
    """How messages name a database: its file, or its URL without the password."""
    path = sqlite_path(url)
    return str(path) if path is not None else make_url(url).render_as_string(hide_password=True)


def _backups_hint(url: str) -> str:
    path = sqlite_path(url)
    if path is None:
        return "restore it from your database backup"
    return f"restore a copy from {path.parent / 'backups'} (made before every schema upgrade)"


def explain(url: str, exc: BaseException) -> DatabaseFileError | None:
    """A `DatabaseFileError` naming the database for an error of the file itself (not a
    database, read-only, locked, damaged, unreachable, full), else None."""
    if make_url(url).get_backend_name() != "sqlite":
        return None  # a server's own messages say what is wrong; there is no file to name
    text = str(getattr(exc, "orig", None) or exc).lower()
    where = describe(url)
    if "file is not a database" in text:
        return DatabaseFileError(
            f"{where} is not a SQLite database (another kind of file, encrypted or overwritten): "
            f"{_backups_hint(url)}, or point SKELEX Desktop at another database "
            "(--data-dir DIR or --db URL)"
        )
    if "malformed" in text:
        return DatabaseFileError(
            f"{where} is damaged (database disk image is malformed): {_backups_hint(url)}"
        )
    if "readonly" in text or "read-only" in text:
        return DatabaseFileError(
            f"cannot write to {where}: the database is read-only for this user; make the file "
            "and its folder writable (e.g. chmod u+w), or use it only for reading "
            "(worklist, label list, db info)"
        )
    if "database is locked" in text or "database table is locked" in text:
        return DatabaseFileError(
            f"{where} is locked by another process writing to it (a writer waits up to "
            f"{BUSY_TIMEOUT_MS // 1000} s): let the other SKELEX Desktop process (an import, a "
            "label import, training) finish, then try again"
        )
    if "unable to open database file" in text:
        return DatabaseFileError(
            f"cannot open {where}: its folder does not exist or cannot be written, or the file "
            "cannot be read; check the path (--data-dir DIR or --db URL) and its permissions"
        )
    if "disk i/o error" in text:
        return DatabaseFileError(f"input/output error on {where}: check the disk it is on")
    if "database or disk is full" in text:
        return DatabaseFileError(f"the disk holding {where} is full: free some space")
    return None


@contextmanager
def explained(url: str) -> Iterator[None]:
    """Re-raise errors of the database file itself as `DatabaseFileError` (see `explain`)."""
    try:
        yield
    except DBAPIError as exc:
        better = explain(url, exc)
        if better is None:
            raise
        raise better from exc
    except sqlite3.Error as exc:  # raised outside SQLAlchemy (a raw connection)
        better = explain(url, exc)
        if better is None:
            raise
        raise better from exc


def _opens_for_writing(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


def writable(path: Path) -> bool:
    """Whether this process may write the SQLite file `path` (it exists): the file opens for
    writing, and so do its -wal and -shm files, or its folder can take them."""
    if not _opens_for_writing(path):
        return False
    if os.access(path.parent, os.W_OK):
        return True
    companions = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
    return all(_opens_for_writing(companion) for companion in companions)


def _configure(readonly: bool, synchronous: str) -> Callable[[sqlite3.Connection, object], None]:
    """The connect listener of a SQLite engine."""

    def configure(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin: otherwise
        # SAVEPOINTs (per-row error handling in one transaction) silently commit early.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not readonly:  # WAL is stored in the file: a read-only opener must not set it
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()

    return configure


def _begin(conn: Connection) -> None:
    conn.exec_driver_sql(f"BEGIN {conn.get_execution_options().get(_BEGIN, 'DEFERRED')}")


def create_db_engine(url: str, readonly: bool = False, synchronous: str = SYNCHRONOUS) -> Engine:
    """An engine for `url`; SQLite files get WAL, foreign keys on, a busy timeout and durable
    commits. `readonly` opens an existing SQLite file read-only (nothing can be written)."""
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
    path = sqlite_path(url)
    if path is not None and not readonly:
        path.parent.mkdir(parents=True, exist_ok=True)
    if make_url(url).get_backend_name() == "sqlite":
        target: str | URL = url
        if readonly and path is not None:
            uri = f"file:{quote(str(path.absolute()))}"
            query = {"mode": "ro", "uri": "true"}
            shm = path.with_name(path.name + "-shm")
            if not shm.exists() and not os.access(path.parent, os.W_OK):
                # SQLite reads a WAL database only through its -shm file, which cannot be made
                # here; no -shm means no process has the database open, so it is read as an
                # unchanging file (a writer that opened it meanwhile would not be seen)
                query["immutable"] = "1"
            target = make_url(url).set(database=uri, query=query)
        engine = create_engine(target, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _configure(readonly, synchronous))
        event.listen(engine, "begin", _begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


def immediate(engine: Engine) -> Engine:
    """`engine` whose SQLite transactions begin IMMEDIATE (take the write lock, waiting up to
    the busy timeout, before the first read); the same engine elsewhere."""
    if engine.dialect.name != "sqlite":
        return engine
    return engine.execution_options(**{_BEGIN: "IMMEDIATE"})


def _refuse_audit_changes(session: Session, _context: object, _instances: object) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEvent):
            raise PermissionError("audit events are append-only: an AuditEvent cannot change")


IMAGE_ROOT_INFO = "skelex_image_root"  # the session.info key of the workstation's image folder


class Database:
    """One database: its engine, a read session factory and the serialised writer.

    `readonly=True` opens an existing SQLite file read-only: `read()` works, `write()` raises
    `DatabaseFileError`. `image_root` is this workstation's shared image folder (the setting);
    every session carries it in `session.info[IMAGE_ROOT_INFO]` for the readers of image paths.
    """

    def __init__(
        self,
        url: str,
        readonly: bool = False,
        synchronous: str = SYNCHRONOUS,
        image_root: Path | None = None,
    ) -> None:
        self.url = url
        self.readonly = readonly
        self.image_root = image_root
        self.engine = create_db_engine(url, readonly, synchronous)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writes = sessionmaker(immediate(self.engine), expire_on_commit=False)
        for factory in (self._sessions, self._writes):
            event.listen(factory, "before_flush", _refuse_audit_changes)
        self._write_lock = threading.RLock()

    @property
    def name(self) -> str:
        """The database file, or its URL without the password."""
        return describe(self.url)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries; it is closed (and rolled back) afterwards."""
        with explained(self.url), self._sessions() as session:
            session.info[IMAGE_ROOT_INFO] = self.image_root
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A session whose work is committed as one transaction, one writer at a time; on
        SQLite the write lock is taken first (waiting for another process up to the busy
        timeout)."""
        if self.readonly:
            raise DatabaseFileError(
                f"{self.name} is open read-only (it is not writable for this user): make it "
                "writable (e.g. chmod u+w) to change anything"
            )
        with explained(self.url), self._write_lock, self._writes.begin() as session:
            session.info[IMAGE_ROOT_INFO] = self.image_root
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
