"""Shared fixtures: a real, migrated SQLite workspace in a temporary data dir."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from skelex_desktop.core.db.engine import Database  # noqa: E402
from skelex_desktop.core.settings import Settings  # noqa: E402
from skelex_desktop.core.workspace import Workspace, open_workspace  # noqa: E402

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, reader="dr.test")


@pytest.fixture
def workspace(settings: Settings) -> Iterator[Workspace]:
    ws = open_workspace(settings)
    yield ws
    ws.close()


@pytest.fixture
def db(workspace: Workspace) -> Database:
    return workspace.db
