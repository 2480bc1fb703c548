"""The F1 list, built from the window's own actions, so the list and the keys cannot disagree.

An action with a shortcut is listed with its keys and its help (`statusTip`, else its text);
actions sharing a `shortcut_group` property (the ten digits, Return and keypad Enter) make one
row under the group's name. Mouse gestures are not actions and are listed from `GESTURES`.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout, QWidget

GROUP = "shortcut_group"
GESTURES: list[tuple[str, str]] = [
    ("Right-drag", "Window/level (right: wider, down: brighter level)"),
    ("Wheel", "Zoom"),
    ("Left-drag", "Pan"),
]


def shortcut_rows(actions: Iterable[QAction]) -> list[tuple[str, str]]:
    """(keys, what they do) for every action with a shortcut, in the actions' order, then the
    mouse gestures."""
    rows: list[tuple[str, str]] = []
    seen_groups: set[str] = set()
    for action in actions:
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        if not keys:
            continue
        group = action.property(GROUP)
        if group:
            if group in seen_groups:
                continue
            seen_groups.add(group)
            keys = str(group)
        rows.append((keys, action.statusTip() or action.text().replace("&", "")))
    return rows + GESTURES


def shortcuts_html(actions: Iterable[QAction]) -> str:
    rows = "".join(
        f"<tr><td><b>{escape(k)}</b></td><td>{escape(v)}</td></tr>"
        for k, v in shortcut_rows(actions)
    )
    return f"<table width='100%' cellspacing='6'>{rows}</table>"


class ShortcutsDialog(QDialog):
    """F1: the list in a scrollable, wrapping view that fits small screens."""

    def __init__(self, html: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.browser = QTextBrowser()
        self.browser.setObjectName("shortcutList")
        self.browser.setHtml(html)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        area = self.screen().availableGeometry()
        self.resize(min(720, area.width() - 40), min(640, area.height() - 60))

    def text(self) -> str:
        return self.browser.toPlainText()
