"""The main window on a real workspace (pytest-qt, offscreen)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from skelex_desktop.core import demo
from skelex_desktop.core.db.models import Image
from skelex_desktop.core.progress import check
from skelex_desktop.core.workspace import Workspace
from skelex_desktop.ui.main_window import MainWindow
from skelex_desktop.ui.workers import Job
from tests.core.factories import add_image


@pytest.fixture
def window(qtbot, workspace: Workspace, monkeypatch) -> MainWindow:
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    win = MainWindow(workspace)
    win.shown_warnings = shown
    qtbot.addWidget(win)
    win.show()
    return win


def _add_images(workspace: Workspace, n: int) -> None:
    with workspace.db.write() as s:
        for i in range(n):
            image = add_image(
                s,
                sop=f"1.2.3.{i}",
                patient_id=f"P{i:03d}",
                study_uid=f"1.2.4.{i}",
                series_uid=f"1.2.5.{i}",
            )
            image.body_part = "KNEE" if i % 2 else "HAND"
            image.status = "confirmed" if i % 3 == 0 else "new"


def test_empty_worklist_offers_demo_studies(window: MainWindow) -> None:
    assert window.empty_banner.isVisible()
    assert window.count_label.text() == "0 images"
    assert window.demo_button.isEnabled()


def test_worklist_filters_sorts_and_pages(window: MainWindow, workspace: Workspace) -> None:
    _add_images(workspace, 30)
    window.model._page = 10
    window.refresh()
    assert not window.empty_banner.isVisible()
    assert window.model.rowCount() == 10 and window.model.total == 30
    assert window.count_label.text() == "10 of 30"
    window.model.fetchMore()
    assert window.model.rowCount() == 20
    window.search.setText("P007")
    assert [window.model.row_at(i).patient_id for i in range(window.model.rowCount())] == ["P007"]
    window.search.clear()
    window.status_filter.setCurrentIndex(window.status_filter.findData("confirmed"))
    assert window.model.total == 10
    window.status_filter.setCurrentIndex(0)
    window.model.sort(0, Qt.SortOrder.AscendingOrder)
    assert window.model.row_at(0).patient_id == "P000"
    window.model.sort(0, Qt.SortOrder.DescendingOrder)
    assert window.model.row_at(0).patient_id == "P029"


def test_a_failing_job_reaches_the_user(qtbot, window: MainWindow) -> None:
    def boom(_progress):
        raise RuntimeError("disk on fire")

    job = window.run_job(Job("Broken", boom), lambda _r: None)
    with qtbot.waitSignal(job.finished, timeout=10_000):
        pass
    qtbot.waitUntil(lambda: bool(window.shown_warnings))
    assert window.shown_warnings == ["Broken failed: disk on fire"]
    assert window.last_error == "Broken failed: disk on fire"


def test_cancel_button_stops_a_running_job(qtbot, window: MainWindow) -> None:
    started = threading.Event()

    def slow(progress):
        progress.set_total(1000)
        started.set()
        while True:
            check(progress)
            threading.Event().wait(0.01)

    job = window.run_job(Job("Slow", slow), lambda _r: None)
    assert started.wait(10)
    qtbot.waitUntil(window.job_status.isVisible)
    with qtbot.waitSignal(job.cancelled, timeout=10_000):
        qtbot.mouseClick(window.job_status.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.runner.running)
    assert not window.job_status.isVisible()


def test_demo_studies_are_created_imported_and_previewed(
    qtbot, window: MainWindow, workspace: Workspace, monkeypatch
) -> None:
    monkeypatch.setattr(demo, "DEMO_IMAGES", 6)
    monkeypatch.setattr(demo, "DEMO_SIZE", 256)
    job = window.create_demo_studies()
    with qtbot.waitSignal(job.finished, timeout=120_000):
        pass
    qtbot.waitUntil(lambda: window.model.total == 6, timeout=10_000)
    assert not window.empty_banner.isVisible() and window.shown_warnings == []
    assert "imported 6" in window.statusBar().currentMessage()
    window.table.selectRow(0)
    qtbot.waitUntil(lambda: window.preview._pixmap is not None)
    assert "px" in window.preview.caption.text()
    with workspace.db.read() as s:
        assert s.query(Image).count() == 6


def test_layout_is_saved_and_restored(qtbot, workspace: Workspace) -> None:
    first = MainWindow(workspace)
    qtbot.addWidget(first)
    first.resize(900, 600)
    first.show()
    first.close()
    assert (workspace.settings.data_dir / "window.ini").exists()
    second = MainWindow(workspace)
    qtbot.addWidget(second)
    assert (second.width(), second.height()) == (900, 600)


def test_launch_without_display_explains_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.pop("QT_QPA_PLATFORM", None)
    out = subprocess.run(
        [sys.executable, "-m", "skelex_desktop", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "skelex-desktop: no display found; run it on a desktop, under Xvfb "
        "(xvfb-run skelex-desktop) or with QT_QPA_PLATFORM=offscreen"
    ]
