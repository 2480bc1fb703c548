"""A team database on a throw-away PostgreSQL cluster: its URL per person, the CLI as each."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from skelex_desktop.cli import main
from skelex_desktop.core.db.engine import Database
from tests.core.postgres_server import postgres_cluster

_numbers = itertools.count()


@pytest.fixture(scope="module", name="cluster_url")
def cluster_url_fixture() -> Iterator[str]:
    """A PostgreSQL cluster for the module's tests (import this into a test module)."""
    with (
        tempfile.TemporaryDirectory(prefix="skelex-pg-") as tmp,
        postgres_cluster(Path(tmp) / "pg") as url,
    ):
        yield url


class Team:
    """A fresh team database on the cluster: its URL per person, and the CLI as each."""

    def __init__(self, cluster_url: str, tmp_path: Path) -> None:
        self.database = f"team_{next(_numbers)}"
        self.cluster_url = cluster_url
        self.tmp_path = tmp_path
        engine = create_engine(cluster_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.database}"'))
        engine.dispose()

    def url(self, user: str = "skelex") -> str:
        parsed = make_url(self.cluster_url).set(username=user, database=self.database)
        return parsed.render_as_string(hide_password=False)

    def cli(self, user: str, *args: str) -> int:
        data_dir = self.tmp_path / f"data-{user}"
        return main(["--db", self.url(user), "--data-dir", str(data_dir), *args])

    def db(self, user: str) -> Database:
        return Database(self.url(user))
