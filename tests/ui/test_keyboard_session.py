"""A whole review by keyboard from launch, in the real window on imported demo studies: launch ->
open -> decide -> confirm -> next -> undo, each step checked in the database."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from skelex_desktop.core.db.models import Image
from skelex_desktop.core.review.labels import current_labels
from skelex_desktop.ui.main_window import MainWindow
from tests.ui.conftest import active_window

TIMEOUT = 120_000


def focused() -> object:
    return QApplication.focusWidget()


def test_a_review_by_keyboard_only(qtbot, demo_workspace, no_modal) -> None:
    db = demo_workspace.db
    win = active_window(qtbot, demo_workspace)
    win.start()  # what launching does (app.run_gui)
    table = win.worklist.table

    # launch: the worklist has the focus, the first image that needs a reader is open
    qtbot.waitUntil(lambda: focused() is table)
    first = win.worklist.model.row_at(0)
    assert win.current is not None and win.current.image_id == first.image_id
    assert win.session.row == 0 and table.currentIndex().row() == 0

    # open (Enter on the worklist), then the image has the keys
    qtbot.keyClick(table, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: win.analysis is not None, timeout=TIMEOUT)
    qtbot.waitUntil(lambda: focused() is win.viewer)

    # decide: T moves to the fracture task, 1 says "fracture"
    qtbot.keyClick(win.viewer, Qt.Key.Key_T)
    assert win.session.current_task.name == "fracture"
    assert win.findings.current_state().name == "fracture"
    qtbot.keyClick(win.viewer, Qt.Key.Key_1)
    qtbot.waitUntil(lambda: win.session.idle)
    with db.read() as s:
        labels = {lv.task: lv.value for lv in current_labels(s) if lv.image_id == first.image_id}
    assert labels == {"fracture": 1}

    # Enter before the required "abnormal" is decided: refused, the cursor goes to it
    qtbot.keyClick(win.viewer, Qt.Key.Key_Return)
    assert win.current.image_id == first.image_id
    assert win.session.current_task.name == "abnormal"
    qtbot.keyClick(win.viewer, Qt.Key.Key_0)
    qtbot.waitUntil(lambda: win.session.idle)
    with db.read() as s:
        labels = {lv.task: lv.value for lv in current_labels(s) if lv.image_id == first.image_id}
    assert labels == {"fracture": 1, "abnormal": 0}

    # confirm: Enter stores the decisions as confirmed and opens the next unreviewed image
    qtbot.keyClick(win.viewer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: win.session.idle)
    with db.read() as s:
        assert s.get(Image, first.image_id).status == "confirmed"
    second = win.worklist.model.row_at(1)
    assert win.current.image_id == second.image_id and win.session.row == 1

    # next: N opens the row below
    qtbot.keyClick(win.viewer, Qt.Key.Key_N)
    assert win.current.image_id == win.worklist.model.row_at(2).image_id

    # undo: Ctrl+Z reverts the confirmation (the reader's own decision stays)
    qtbot.keyClick(win.viewer, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: win.session.idle)
    with db.read() as s:
        assert s.get(Image, first.image_id).status != "confirmed"
        labels = {lv.task: lv.value for lv in current_labels(s) if lv.image_id == first.image_id}
    assert labels == {"fracture": 1, "abnormal": 0}
    assert win.worklist.model.row_at(0).status != "confirmed"  # the worklist shows it

    # the search box never keeps the keys: Escape hands the focus back to the worklist
    qtbot.keyClick(win.viewer, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: focused() is win.worklist.search)
    qtbot.keyClick(win.worklist.search, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: focused() is table)
    assert no_modal == []


def test_every_menu_command_has_a_key(qtbot, workspace, no_modal) -> None:
    win = MainWindow(workspace)
    qtbot.addWidget(win)
    commands = [
        action
        for menu_action in win.menuBar().actions()
        for action in menu_action.menu().actions()
        if not action.isSeparator()
    ]
    assert len(commands) > 25
    assert [a.text() for a in commands if a.shortcut().isEmpty()] == []
