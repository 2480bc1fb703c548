"""The main window on real workspaces: empty state, worklist, jobs, layout, no-display launch."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from PySide6.QtCore import Qt

from skelex_desktop.core.db.models import Image
from skelex_desktop.core.progress import check
from skelex_desktop.core.workspace import Workspace
from skelex_desktop.ui.main_window import MainWindow
from skelex_desktop.ui.workers import Job
from tests.core.factories import add_image


def _window(qtbot, workspace: Workspace) -> MainWindow:
    win = MainWindow(workspace)
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
            image.status = "confirmed" if i % 3 == 0 else "new"


def test_objects_are_named_for_tests_and_accessibility(qtbot, workspace, no_modal) -> None:
    win = _window(qtbot, workspace)
    for name in (
        "worklistView",
        "imageView",
        "overlayToggle",
        "opacitySlider",
        "labelPanel",
        "confirmButton",
        "importButton",
    ):
        assert win.findChild(object, name) is not None, name


def test_empty_worklist_offers_demo_studies(qtbot, workspace, no_modal) -> None:
    win = _window(qtbot, workspace)
    assert win.worklist.empty_banner.isVisible()
    assert win.worklist.count_label.text() == "0 images"


def test_worklist_filters_sorts_and_pages(qtbot, workspace, no_modal) -> None:
    _add_images(workspace, 30)
    win = _window(qtbot, workspace)
    model = win.worklist.model
    model._page = 10
    win.worklist.refresh()
    assert not win.worklist.empty_banner.isVisible()
    assert (model.rowCount(), model.total) == (10, 30)
    assert win.worklist.count_label.text() == "10 of 30"
    assert model.row_at(25).patient_id  # fetches further pages on demand
    assert model.rowCount() == 30
    win.worklist.search.setText("P007")
    assert [model.row_at(i).patient_id for i in range(model.rowCount())] == ["P007"]
    win.worklist.search.clear()
    status = win.worklist.status_filter
    status.setCurrentIndex(status.findData("confirmed"))
    assert model.total == 10
    status.setCurrentIndex(0)
    model.sort(0, Qt.SortOrder.AscendingOrder)
    assert model.row_at(0).patient_id == "P000"
    model.sort(0, Qt.SortOrder.DescendingOrder)
    assert model.row_at(0).patient_id == "P029"


def test_a_failing_job_reaches_the_user(qtbot, workspace, no_modal) -> None:
    win = _window(qtbot, workspace)

    def boom(_progress):
        raise RuntimeError("disk on fire")

    job = Job("Broken", boom)
    with qtbot.waitSignal(job.finished, timeout=10_000):  # connected before the job starts
        win.run_job(job, lambda _r: None)
    qtbot.waitUntil(lambda: bool(no_modal))
    assert no_modal == ["Broken failed: disk on fire"]
    assert win.last_error == "Broken failed: disk on fire"


def test_cancel_button_stops_a_running_job(qtbot, workspace, no_modal) -> None:
    win = _window(qtbot, workspace)
    started = threading.Event()

    def slow(progress):
        progress.set_total(1000)
        started.set()
        while True:
            check(progress)
            threading.Event().wait(0.01)

    job = win.run_job(Job("Slow", slow), lambda _r: None)
    assert started.wait(10)
    qtbot.waitUntil(win.job_status.isVisible)
    with qtbot.waitSignal(job.cancelled, timeout=10_000):
        qtbot.mouseClick(win.job_status.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.runner.running)
    assert not win.job_status.isVisible()


def test_demo_studies_are_generated_and_imported_from_the_banner(
    qtbot, workspace, no_modal, monkeypatch
) -> None:
    from skelex_desktop.core import demo

    monkeypatch.setattr(demo, "DEMO_IMAGES", 4)
    monkeypatch.setattr(demo, "DEMO_SIZE", 256)
    win = _window(qtbot, workspace)
    with qtbot.waitSignal(win.runner.jobs_changed, timeout=5_000):
        qtbot.mouseClick(win.worklist.demo_button, Qt.MouseButton.LeftButton)
    job = win.runner.running[0]
    with qtbot.waitSignal(job.finished, timeout=180_000):
        pass
    qtbot.waitUntil(lambda: win.worklist.model.total == 4, timeout=10_000)
    assert not win.worklist.empty_banner.isVisible() and no_modal == []
    assert "imported 4" in win.statusBar().currentMessage()
    with workspace.db.read() as s:
        assert s.query(Image).count() == 4


def test_import_dialog_reports_every_file(qtbot, demo_source: Path, workspace, no_modal) -> None:
    win = _window(qtbot, workspace)
    dialog = win.show_import_dialog()
    (demo_source / "notes.txt").write_text("not an image")
    dialog.add_sources([demo_source])
    with qtbot.waitSignal(dialog.imported, timeout=120_000):
        dialog.start()
    assert dialog.report is not None
    qtbot.waitUntil(lambda: win.worklist.model.total == dialog.report.imported > 0)
    outcomes = {dialog.table.item(r, 1).text() for r in range(dialog.table.rowCount())}
    assert "imported" in outcomes and dialog.table.rowCount() == len(dialog.report.files)
    assert dialog.status.text() == dialog.report.summary()
    (demo_source / "notes.txt").unlink()


def test_layout_is_saved_and_restored(qtbot, workspace, no_modal) -> None:
    first = _window(qtbot, workspace)
    first.resize(760, 540)  # inside the offscreen 800x600 screen
    first.close()
    assert (workspace.settings.data_dir / "window.ini").exists()
    second = MainWindow(workspace)
    qtbot.addWidget(second)
    assert (second.width(), second.height()) == (first.width(), first.height())
    assert second.saveState() == first.saveState()


def test_help_lists_shortcuts_and_about_names_the_model(qtbot, workspace, no_modal) -> None:
    win = _window(qtbot, workspace)
    shortcuts = win.show_shortcuts().text()
    win.show_about()
    (about,) = no_modal
    assert "Ctrl+Shift+Z" in shortcuts and "uncertain" in shortcuts
    assert "skelex-demo" in about and "synthetic data, not for clinical use" in about


def test_f1_lists_every_action_with_a_shortcut(qtbot, workspace, no_modal) -> None:
    from PySide6.QtGui import QKeySequence

    from skelex_desktop.ui.shortcuts import GROUP, shortcut_rows

    win = _window(qtbot, workspace)
    rows = dict(shortcut_rows(win.actions()))
    with_keys = [a for a in win.actions() if not a.shortcut().isEmpty()]
    assert len(with_keys) > 30
    for action in with_keys:
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        listed = action.property(GROUP) or keys
        assert listed in rows, f"{action.text()} ({keys}) is not in the F1 list"
    assert "weak" in rows["Enter"] and rows["0-9"].startswith("Choose that class")
    assert {"Ctrl+Z", "Ctrl+Shift+Z", "U", "T", "B", "E", "F1", "Right-drag"} <= set(rows)
    # an action added later is listed without anyone editing the list
    win._action("Measure", "M", lambda: None, help="Measure a distance")
    assert dict(shortcut_rows(win.actions()))["M"] == "Measure a distance"


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


def test_export_dialog_opens_from_the_file_menu(qtbot, workspace, no_modal) -> None:
    win = _window(qtbot, workspace)
    file_menu = win.menuBar().actions()[0].menu()
    action = next(a for a in file_menu.actions() if a.text().startswith("Export labelled set"))
    assert action.shortcut().toString() == "Ctrl+E"
    dialog = win.show_export_dialog()
    assert dialog.isVisible() and dialog.windowTitle() == "Export labelled set"
    dialog.close()


def test_what_the_ai_changed_dialog(qtbot, workspace, no_modal) -> None:
    from tests.core.factories import add_image
    from tests.core.test_review import _predict

    with workspace.db.write() as s:
        image_id = add_image(s).id
    _predict(workspace.db, image_id, "abnormal", {"abnormal": 0.8}, 0.8)
    win = _window(qtbot, workspace)
    win.session.open(image_id)
    win.session.select_task("abnormal")
    win.session.choose(1)  # accepts the suggestion
    qtbot.waitUntil(lambda: win.session.idle)
    dialog = win.show_influence_dialog()
    qtbot.addWidget(dialog)
    cells = [dialog.table.item(0, c).text() for c in range(dialog.table.columnCount())]
    assert cells[:5] == [workspace.settings.reader, "abnormal", "skelex-demo 1", "1", "1"]
    assert cells[-1] == "100%" and dialog.bars.rows == dialog.report.rows
