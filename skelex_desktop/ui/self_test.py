"""The self-test's window step: the main window opened on the test's workspace, then closed."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QApplication

from skelex_desktop.core.workspace import Workspace

OPEN_TIMEOUT_S = 30.0


def open_and_close_window(workspace: Workspace) -> str:
    """Show the window, wait until it is exposed with the first image open, close it."""
    from skelex_desktop.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(["skelex-desktop"])
    window = MainWindow(workspace)
    window.show()
    window.start()
    deadline = time.monotonic() + OPEN_TIMEOUT_S
    while time.monotonic() < deadline and not (
        window.isVisible() and window.windowHandle() is not None and window.session.current
    ):
        app.processEvents()
        time.sleep(0.01)
    shown = window.isVisible() and window.session.current is not None
    size = f"{window.width()}x{window.height()}"
    platform = QApplication.platformName()
    window.close()
    app.processEvents()
    if not shown:
        raise RuntimeError(f"the window did not show an image within {OPEN_TIMEOUT_S:.0f} s")
    if window.isVisible():
        raise RuntimeError("the window did not close")
    return f"main window shown ({size}, Qt platform {platform}) with image open, closed"
