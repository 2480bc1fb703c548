"""Alembic environment: runs on the connection handed over by `skelex_desktop.core.db.migrate`."""

from alembic import context
from sqlalchemy import Connection, create_engine

from skelex_desktop.core.db.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        url = config.get_main_option("sqlalchemy.url")
        if url is None:
            raise RuntimeError("alembic got neither a connection nor a sqlalchemy.url")
        engine = create_engine(url)
        with engine.begin() as conn:
            _migrate(conn)
        engine.dispose()
    else:
        _migrate(connection)


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run()
