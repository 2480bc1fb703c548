"""Who is connected: on PostgreSQL the database's session user, and whether team mode is on.

In team mode (`skelex-desktop team init` turned on row-level security) every decision is
stored under the PostgreSQL role the person connected as, so the reader name comes from the
server, never from a setting. On SQLite (single user) there is no connected user: the reader
name is the setting, as always.
"""

from __future__ import annotations

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session


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
