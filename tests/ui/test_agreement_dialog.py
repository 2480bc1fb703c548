"""Issue #19: Review > Reader agreement (Ctrl+Shift+K) in the real window: the per-task table of
Cohen's and Fleiss' kappa with their intervals, computed off the GUI thread, with the numbers
`team agreement` gives."""

from __future__ import annotations

import threading

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from sklearn.metrics import cohen_kappa_score

from skelex_desktop.core.team import agreement
from skelex_desktop.core.workspace import Workspace
from skelex_desktop.ui.dialogs import agreement_dialog
from skelex_desktop.ui.dialogs.agreement_dialog import COLUMNS, AgreementDialog
from skelex_desktop.ui.shortcuts import shortcut_rows
from tests.core.factories import add_image
from tests.core.flows import decide
from tests.ui.conftest import active_window

KL = {"dr.a": [0, 1, 2, 3, 4, 2], "dr.b": [0, 1, 3, 3, 4, 1], "dr.c": [0, 2, 2, 3, 3, 2]}


def _read(workspace: Workspace, reader: str, task: str, choices: list[int]) -> None:
    """Decisions as a reader makes them in the window, on images 1, 2, ... in turn."""
    decisions = [(image_id, task, index) for image_id, index in enumerate(choices, start=1)]
    decide(workspace.settings.data_dir, reader, decisions)


def _images(workspace: Workspace, n: int) -> None:
    with workspace.db.write() as s:
        for i in range(n):
            add_image(s, sop=f"1.2.3.{i}", study_uid=f"1.2.4.{i}", series_uid=f"1.2.5.{i}")


def _cells(dialog: AgreementDialog) -> list[list[str]]:
    table = dialog.table
    return [
        [table.item(r, c).text() for c in range(table.columnCount())]
        for r in range(table.rowCount())
    ]


def _open_by_keys(qtbot, win) -> AgreementDialog:  # noqa: ANN001 - qtbot, MainWindow
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win)  # shortcuts reach it only then
    qtbot.keyClick(
        win.viewer,
        Qt.Key.Key_K,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    dialogs = win.findChildren(AgreementDialog)
    assert len(dialogs) == 1
    dialog = dialogs[0]
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=30_000)
    return dialog


def test_agreement_dialog_from_the_review_menu(qtbot, workspace, no_modal, monkeypatch) -> None:
    _images(workspace, 6)
    for reader, grades in KL.items():
        _read(workspace, reader, "kl_grade", grades)
    _read(workspace, "dr.a", "fracture", [0, 1, 1, 0, 0, 1])
    _read(workspace, "dr.b", "fracture", [0, 1, 0, 0, 0, 1])
    threads: list[threading.Thread] = []

    def recorded(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - the real report, its thread noted
        threads.append(threading.current_thread())
        return agreement.agreement_report(*args, **kwargs)

    monkeypatch.setattr(agreement_dialog, "agreement_report", recorded)
    win = active_window(qtbot, workspace)
    action = next(a for a in win.actions() if a.text() == "Reader agreement...")
    assert action in win.menuBar().actions()[1].menu().actions()  # the Review menu
    assert dict(shortcut_rows(win.actions()))["Ctrl+Shift+K"].startswith("Inter-reader agreement")

    dialog = _open_by_keys(qtbot, win)
    assert threads and threads[0] is not threading.main_thread()
    assert dialog.table.columnCount() == len(COLUMNS)
    rows = _cells(dialog)
    fracture = [r for r in rows if r[0] == "fracture"]
    kl = [r for r in rows if r[0] == "kl_grade"]
    assert [r[1] for r in kl] == ["dr.a / dr.b", "dr.a / dr.c", "dr.b / dr.c", "Fleiss, all 3"]
    assert [r[1] for r in fracture] == ["dr.a / dr.b", "Fleiss, all 2"]

    ab = kl[0]
    assert ab[2:4] == ["6", "67%"]
    assert float(ab[4]) == round(cohen_kappa_score(KL["dr.a"], KL["dr.b"]), 3)
    weighted = cohen_kappa_score(KL["dr.a"], KL["dr.b"], labels=range(5), weights="quadratic")
    assert float(ab[6]) == round(weighted, 3)
    low, high = (float(x) for x in ab[7].split(" to "))
    assert low <= float(ab[6]) <= high
    assert fracture[0][6:8] == ["", ""]  # binary: no weighted kappa

    # the same numbers as the command line's report (same default seed and resamples)
    with workspace.db.read() as session:
        same = agreement.agreement_report(session, tasks=["kl_grade"])
    pair = same.tasks[0].pairs[0]
    assert ab[5] == f"{pair.kappa.low:.3f} to {pair.kappa.high:.3f}"
    assert "abnormal" in dialog.footer.text() and "2000 resamples" in dialog.footer.text()


def test_agreement_dialog_explains_undefined_and_empty(qtbot, workspace, no_modal) -> None:
    _images(workspace, 3)
    win = active_window(qtbot, workspace)
    dialog = _open_by_keys(qtbot, win)
    assert dialog.table.rowCount() == 0
    assert "No task has decisions from two readers yet" in dialog.status.text()
    dialog.close()

    _read(workspace, "dr.a", "fracture", [0, 0, 0])
    _read(workspace, "dr.b", "fracture", [0, 0, 0])
    _read(workspace, "dr.a", "implant", [1, 0, 1])
    dialog = win.show_agreement_dialog()
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.report is not None, timeout=30_000)
    rows = {(r[0], r[1]): r for r in _cells(dialog)}
    pair = rows[("fracture", "dr.a / dr.b")]
    assert pair[4] == "n/a" and pair[5] == ""
    assert "both readers chose 'no fracture' for every image" in pair[8]
    assert rows[("implant", "")][8] == "fewer than two readers decided this task"
