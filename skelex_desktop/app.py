"""Composition root of the window: settings -> database -> services -> main window."""

from __future__ import annotations

import logging
import os
import sys

NO_DISPLAY = (
    "skelex-desktop: no display found; run it on a desktop, under Xvfb "
    "(xvfb-run skelex-desktop) or with QT_QPA_PLATFORM=offscreen"
)


def display_available(environ: dict[str, str] | None = None) -> bool:
    """Whether Qt can open a window here (X11/Wayland display, or an explicit QPA platform)."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return True
    return bool(env.get("QT_QPA_PLATFORM") or env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def configure_logging(data_dir) -> None:  # noqa: ANN001 - a Path
    data_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=data_dir / "skelex-desktop.log",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def run_gui(
    data_dir: str | None = None,
    db_url: str | None = None,
    reader: str | None = None,
    open_paths: list[str] | None = None,
) -> int:
    """Open the main window on the configured workspace (importing `open_paths` and showing the
    first of their images, when given); returns the exit status."""
    if not display_available():
        print(NO_DISPLAY, file=sys.stderr)
        return 2
    from PySide6.QtWidgets import QApplication, QMessageBox

    from skelex_desktop.core.settings import load_settings
    from skelex_desktop.core.workspace import open_workspace
    from skelex_desktop.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("SKELEX Desktop")
    settings = load_settings(data_dir=data_dir, db_url=db_url)
    if reader:
        settings.reader = reader
    configure_logging(settings.data_dir)
    try:
        workspace = open_workspace(settings)
    except Exception as exc:  # shown to the user, not a traceback on a terminal nobody sees
        logging.exception("cannot open the workspace")
        QMessageBox.critical(None, "SKELEX Desktop", f"Cannot open the database: {exc}")
        return 1
    if not settings.settings_path.exists():
        settings.save()
    window = MainWindow(workspace)
    window.show()
    window.start()  # keyboard-first: the worklist has the focus, the first unread image is open
    if open_paths:
        from pathlib import Path

        window.open_files([Path(p).absolute() for p in open_paths])
    try:
        return app.exec()
    finally:
        workspace.close()
