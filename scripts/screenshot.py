"""Take docs/screenshot.png of the real window: demo studies in a fresh data dir, the first image
opened by keyboard and analysed by the bundled demo model, the screen grabbed with ImageMagick.

    xvfb-run -s "-screen 0 1600x1000x24" python scripts/screenshot.py [OUT.png] [--prior]

`--prior`: an image whose patient has an earlier study, the prior beside it (O) and a length
measured on it (L).

The window fills the virtual screen, so `-screen 0 1366x768x24` shows what a hospital laptop
shows.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from skelex_desktop.core.demo import create_demo_studies
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import open_workspace
from skelex_desktop.ui.main_window import MainWindow

ROOT = Path(__file__).resolve().parents[1]


def wait(app: QApplication, done, timeout: float = 180.0) -> None:  # noqa: ANN001 - a predicate
    end = time.monotonic() + timeout
    while not done():
        if time.monotonic() > end:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.02)


def show_prior_and_measure(app: QApplication, window: MainWindow) -> None:
    from skelex_desktop.core.review.studies import companions

    model = window.worklist.model
    ids = [model.row_at(r).image_id for r in range(model.total)]  # type: ignore[union-attr]
    with window.db.read() as session:
        image_id = next(i for i in ids if any(c.prior for c in companions(session, i, True)))
    window.open_image_of_study(image_id)
    wait(app, lambda: window.analysis is not None and window.viewer.frame is not None)
    QTest.keyClick(window.viewer, Qt.Key.Key_O)
    QTest.keyClick(window.viewer, Qt.Key.Key_L)
    rows, cols = window.viewer.frame.shape  # type: ignore[union-attr]
    window.viewer.line_drawn.emit(QPointF(cols * 0.3, rows * 0.3), QPointF(cols * 0.6, rows * 0.7))
    wait(app, lambda: window.session.idle and window.findings.measurements.count() > 0)


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    with_prior = "--prior" in sys.argv
    out = Path(args[0]) if args else ROOT / "docs" / "screenshot.png"
    app = QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        workspace = open_workspace(Settings(data_dir=Path(tmp), reader="dr.demo"))
        create_demo_studies(workspace)
        window = MainWindow(workspace)
        window.setGeometry(window.screen().availableGeometry())
        window.show()
        window.activateWindow()  # shortcuts go to the active window (no window manager here)
        window.start()  # as at launch: the first unread image open, the worklist focused
        QTest.keyClick(window.worklist.table, Qt.Key.Key_Return)
        wait(app, lambda: window.analysis is not None and window.viewer.frame is not None)
        QTest.keyClick(window.viewer, Qt.Key.Key_T)  # the fracture task is current
        if with_prior:
            show_prior_and_measure(app, window)
        for _ in range(50):  # let the overlay and the panels paint
            app.processEvents()
            time.sleep(0.02)
        subprocess.run(["import", "-window", "root", str(out)], check=True)
        window.close()
        workspace.close()
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
