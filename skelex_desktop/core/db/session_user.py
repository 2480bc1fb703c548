"""Who is connected: on PostgreSQL the database's session user, and whether team mode is on.

In team mode (`skelex-desktop team init` turned on row-level security) every decision is
stored under the PostgreSQL role the person connected as, so the reader name comes from the
server, never from a setting. On SQLite (single user) there is no connected user: the reader
name is the setting, as always.
"""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

INSUFFICIENT_PRIVILEGE = "42501"  # PostgreSQL's SQLSTATE for a refused privilege


def _dialect(bind: Session | Connection) -> str:
    return bind.get_bind().dialect.name if isinstance(bind, Session) else bind.dialect.name


def session_user(bind: Session | Connection) -> str | None:
    """The PostgreSQL session user (the role this person logged in as; `SET ROLE` does not
    change it); None on SQLite."""
    if _dialect(bind) != "postgresql":
        return None
    return str(bind.execute(text("SELECT session_user")).scalar_one())


def team_mode(bind: Session | Connection) -> bool:
    """Whether this is a team database: PostgreSQL with row-level security on the labels."""
    if _dialect(bind) != "postgresql":
        return False
    on = bind.execute(
        text("SELECT relrowsecurity FROM pg_class WHERE oid = to_regclass('labels')")
    ).scalar()
    return bool(on)


def refused(exc: BaseException) -> str | None:
    """The server's one-line refusal when `exc` is the team database refusing this person's
    role a write (a privilege, row-level security or a team trigger), else None."""
    if not isinstance(exc, DBAPIError):
        return None
    orig = exc.orig
    if getattr(orig, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
        return None
    return str(orig).strip().splitlines()[0]


def analysis_refused(exc: BaseException) -> str | None:
    """What to tell a reader whose AI analysis the team database refused, else None."""
    reason = refused(exc)
    if reason is None:
        return None
    return (
        f"AI analysis is not available to you yet ({reason}): on a team database only an admin "
        "registers the models; ask an admin to run `skelex-desktop analyze` once on the "
        "imported images (docs/TEAM.md). You can read without the AI suggestions"
    )
