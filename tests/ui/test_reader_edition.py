"""The window in the reader edition (no torch): File > Train task heads says it needs the full
edition and cannot be started; in the full edition it opens the training dialog."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtGui import QAction

from skelex_desktop.ui.main_window import MainWindow


def _training_entry(win: MainWindow) -> QAction:
    file_menu = win.menuBar().actions()[0].menu()
    (entry,) = [a for a in file_menu.actions() if a.text().startswith("Train task heads")]
    return entry


def test_reader_edition_training_entry_needs_the_full_edition(
    qtbot, workspace, no_modal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # what the reader edition's bundle lacks
    win = MainWindow(workspace)
    qtbot.addWidget(win)
    entry = _training_entry(win)
    assert entry.text() == "Train task heads (needs the full edition)"
    assert not entry.isEnabled()
    assert "needs the full edition of SKELEX Desktop" in entry.statusTip()


def test_full_edition_training_entry_opens_the_dialog(qtbot, workspace, no_modal) -> None:
    win = MainWindow(workspace)
    qtbot.addWidget(win)
    entry = _training_entry(win)
    assert entry.text() == "Train task heads..." and entry.isEnabled()
    assert entry.shortcut().toString() == "Ctrl+Shift+T"
