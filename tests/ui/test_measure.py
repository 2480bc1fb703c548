"""Measuring in the window: L drags a length, A two lines for an angle; shown on the image and in
the findings panel, stored in full-resolution pixels, undone by Ctrl+Z."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt

from skelex_desktop.core.review.measurements import list_measurements
from skelex_desktop.ui.main_window import MainWindow
from tests.ui.conftest import active_window


def drag(qtbot, win: MainWindow, start: QPoint, end: QPoint) -> None:  # noqa: ANN001
    viewport = win.viewer.viewport()
    qtbot.mousePress(viewport, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=end)


def test_length_and_angle_by_keyboard_and_mouse(qtbot, demo_workspace, no_modal) -> None:
    win = active_window(qtbot, demo_workspace)
    win.start()
    qtbot.waitUntil(lambda: win.viewer.frame is not None, timeout=60_000)
    image_id = win.current.image_id

    qtbot.keyClick(win.viewer, Qt.Key.Key_L)
    assert win.viewer.measure_mode
    a, b = QPoint(40, 40), QPoint(140, 40)
    drag(qtbot, win, a, b)
    qtbot.waitUntil(lambda: win.session.idle)
    assert not win.viewer.measure_mode
    with demo_workspace.db.read() as s:
        (length,) = list_measurements(s, image_id)
    # stored in full-resolution pixels: the scene coordinates under the two viewport points
    start, end = win.viewer.mapToScene(a), win.viewer.mapToScene(b)
    assert length.points == ((start.x(), start.y()), (end.x(), end.y()))
    assert length.unit == ("mm" if win.viewer.frame.pixel_spacing is not None else "px")
    assert win.findings.measurements.count() == 1 and win.viewer.measure_items

    qtbot.keyClick(win.viewer, Qt.Key.Key_A)
    drag(qtbot, win, QPoint(40, 80), QPoint(140, 80))
    drag(qtbot, win, QPoint(60, 60), QPoint(60, 160))
    qtbot.waitUntil(lambda: win.session.idle)
    with demo_workspace.db.read() as s:
        kinds = [(m.kind, round(m.value)) for m in list_measurements(s, image_id)]
    assert kinds[0][0] == "length" and kinds[1] == ("angle", 90)
    assert "angle 90.0 deg" in win.findings.measurements.item(1).text()

    qtbot.keyClick(win.viewer, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: win.session.idle)
    assert win.findings.measurements.count() == 1
    assert no_modal == []
