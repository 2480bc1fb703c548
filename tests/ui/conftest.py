"""UI fixtures: a workspace with a few small demo studies imported (real files, real import)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from skelex_desktop.core import demo
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import Workspace, open_workspace

DEMO_N = 6


@pytest.fixture(scope="session")
def demo_source(tmp_path_factory) -> Path:
    """One small demo set generated per test session; each test copies it."""
    data_dir = tmp_path_factory.mktemp("demo-source")
    ws = open_workspace(Settings(data_dir=data_dir))
    original = (demo.DEMO_IMAGES, demo.DEMO_SIZE)
    demo.DEMO_IMAGES, demo.DEMO_SIZE = DEMO_N, 384
    try:
        demo.create_demo_studies(ws)
    finally:
        demo.DEMO_IMAGES, demo.DEMO_SIZE = original
        ws.close()
    return data_dir / "demo-studies"


@pytest.fixture
def demo_workspace(demo_source: Path, tmp_path: Path) -> Iterator[Workspace]:
    from skelex_desktop.core.ingest import ImportOptions, import_paths

    data_dir = tmp_path / "data"
    shutil.copytree(demo_source, data_dir / "demo-studies")
    ws = open_workspace(Settings(data_dir=data_dir, reader="dr.ui"))
    patients = sorted(
        p for p in (data_dir / "demo-studies").iterdir() if p.is_dir() and p.name != "masks"
    )
    import_paths(ws.db, patients, ImportOptions(data_dir=data_dir, reader="dr.ui", workers=1))
    yield ws
    ws.close()


@pytest.fixture
def no_modal(monkeypatch) -> list[str]:
    """Modal message boxes would block a test: record their text instead."""
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    monkeypatch.setattr(QMessageBox, "information", lambda *a, **k: shown.append(a[2]))
    monkeypatch.setattr(QMessageBox, "about", lambda *a, **k: shown.append(a[2]))
    return shown


def active_window(qtbot, workspace: Workspace):  # noqa: ANN001, ANN201 - qtbot, MainWindow
    """The real window, shown and active (shortcuts reach an active window only)."""
    from skelex_desktop.ui.main_window import MainWindow

    win = MainWindow(workspace)
    qtbot.addWidget(win)
    win.show()
    win.activateWindow()
    qtbot.waitExposed(win)
    return win
