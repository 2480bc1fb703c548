"""The reader's loop on real imported demo studies and the bundled demo model (real ONNX)."""

from __future__ import annotations

from PySide6.QtCore import Qt

from skelex_desktop.core.db.models import Image
from skelex_desktop.core.review.decisions import task_states
from skelex_desktop.core.review.labels import current_labels
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import open_workspace
from skelex_desktop.ui.main_window import MainWindow
from skelex_desktop.ui.stall import StallDetector

ANALYSIS_TIMEOUT = 120_000


def settle(qtbot, win: MainWindow) -> None:
    """Wait until the session's queued decisions are stored and shown."""
    qtbot.waitUntil(lambda: win.session.idle, timeout=10_000)


def _open_first(qtbot, win: MainWindow) -> None:
    win.worklist.table.setFocus()
    win.worklist.table.selectRow(0)
    qtbot.keyClick(win.worklist.table, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: win.viewer.frame is not None, timeout=ANALYSIS_TIMEOUT)
    qtbot.waitUntil(lambda: win.analysis is not None, timeout=ANALYSIS_TIMEOUT)


def test_open_overlay_confirm_correct_undo_and_reopen(qtbot, demo_workspace, no_modal) -> None:
    win = MainWindow(demo_workspace)
    qtbot.addWidget(win)
    win.show()
    stalls = StallDetector()
    stalls.start()
    _open_first(qtbot, win)
    first_id = win.current.image_id

    # overlay geometry equals image geometry, and E toggles it
    error_map = win.analysis.result.error_map
    assert error_map.shape == win.viewer.frame.shape
    rows, cols = win.viewer.frame.shape
    overlay_rect = win.viewer.overlay_item.sceneBoundingRect()
    assert overlay_rect == win.viewer.image_item.sceneBoundingRect()
    assert (overlay_rect.width(), overlay_rect.height()) == (cols, rows)
    assert win.viewer.overlay_item.isVisible()
    qtbot.keyClick(win.viewer, Qt.Key.Key_E)
    assert not win.viewer.overlay_item.isVisible()
    qtbot.keyClick(win.viewer, Qt.Key.Key_E)
    assert win.viewer.overlay_item.isVisible()

    # the demo package's bundled heads suggest fracture etc. from the first analysis; a task
    # without any suggestion says so plainly
    states = {r.state.name: r for r in win.findings.rows}
    assert states["abnormal"].state.has_suggestion
    assert states["fracture"].ai.text().startswith("AI (task head)")
    assert "no AI suggestion" in states["anatomical_location"].ai.text()
    # the demo heads are at chance (CV AUROC < 0.70): shown, marked, never accepted by Enter
    assert "not accepted by Enter" in states["implant"].ai.text()
    # the demo map is weak on its own calibration set, and the panel says so next to it
    assert "hotspots" in win.findings.analysis_status.text()
    assert "Weak map on its SynthMSK calibration set" in win.findings.analysis_status.text()
    weak = {n for n, r in states.items() if r.state.has_suggestion and not r.state.confirmable}

    # correct "fracture" with a number key (T moves to the next task), then undo it
    qtbot.keyClick(win.viewer, Qt.Key.Key_T)
    assert win.findings.current_state().name == "fracture"
    qtbot.keyClick(win.viewer, Qt.Key.Key_1)
    settle(qtbot, win)  # decisions are stored off the GUI thread
    with demo_workspace.db.read() as s:
        labels = {lv.task: lv for lv in current_labels(s) if lv.image_id == first_id}
    assert labels["fracture"].value == 1 and labels["fracture"].reader == "dr.ui"
    qtbot.keyClick(win.viewer, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    settle(qtbot, win)
    with demo_workspace.db.read() as s:
        assert [lv for lv in current_labels(s) if lv.task == "fracture"] == []
    qtbot.keyClick(
        win.viewer,
        Qt.Key.Key_Z,
        Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier,
    )
    qtbot.keyClick(win.viewer, Qt.Key.Key_0)  # a second correction: no fracture

    # Enter with the required "abnormal" undecided (its suggestions are weak): not confirmed,
    # the cursor goes to it and the status bar says why
    qtbot.keyClick(win.viewer, Qt.Key.Key_Return)
    assert win.current.image_id == first_id and win.session.current_task.name == "abnormal"
    assert "Abnormal must be decided" in win.statusBar().currentMessage()
    qtbot.keyClick(win.viewer, Qt.Key.Key_1)  # the reader's own call: abnormal
    # Enter confirms the shown suggestion and advances to the next unreviewed image
    qtbot.keyClick(win.viewer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: win.current.image_id != first_id, timeout=10_000)
    longest = stalls.stop()
    win.close()

    reopened = open_workspace(Settings(data_dir=demo_workspace.settings.data_dir))
    try:
        with reopened.db.read() as s:
            states = {st.name: st for st in task_states(s, first_id)}
            labels = {lv.task: lv for lv in current_labels(s) if lv.image_id == first_id}
            image_status = s.get(Image, first_id).status
    finally:
        reopened.close()
    assert labels["fracture"].value == 0 and labels["abnormal"].value == 1  # the reader's own
    assert image_status == "confirmed"
    own = {"fracture", "abnormal"}
    for name, state in states.items():  # Enter accepted exactly the confirmable suggestions
        if name in own:
            continue
        if state.confirmable:
            assert labels[name].prediction_relation == "confirmed"
            assert labels[name].prediction_id == state.prediction_id
        else:
            assert name not in labels  # weak or no suggestion: nothing invented
    assert weak and not weak & set(labels) - own
    assert no_modal == []
    # the GUI thread never froze; the strict 100 ms target is measured by bench/viewer.py
    assert longest < 1500, f"GUI thread stalled for {longest:.0f} ms"


def test_box_region_in_full_resolution_and_hotspot_zoom(qtbot, demo_workspace, no_modal) -> None:
    from skelex_desktop.core.review.regions import list_regions

    win = MainWindow(demo_workspace)
    qtbot.addWidget(win)
    win.show()
    _open_first(qtbot, win)
    win.box_action.trigger()
    assert win.viewer.box_mode
    from PySide6.QtCore import QRectF

    win.viewer.box_drawn.emit(QRectF(10.5, 20.0, 40.0, 30.0))
    settle(qtbot, win)
    with demo_workspace.db.read() as s:
        (region,) = list_regions(s, win.current.image_id)
    box = region[1]
    assert (box.x0, box.y0, box.x1, box.y1) == (10.5, 20.0, 50.5, 50.0)
    assert len(win.viewer.region_items) == 1 and not win.viewer.box_mode
    qtbot.keyClick(win.viewer, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    settle(qtbot, win)
    with demo_workspace.db.read() as s:
        assert list_regions(s, win.current.image_id) == []


def test_viewer_tools_change_only_the_display(qtbot, demo_workspace, no_modal) -> None:
    win = MainWindow(demo_workspace)
    qtbot.addWidget(win)
    win.show()
    _open_first(qtbot, win)
    viewer = win.viewer
    default = viewer.window
    qtbot.keyClick(viewer, Qt.Key.Key_W)
    assert viewer.window != default
    qtbot.keyClick(viewer, Qt.Key.Key_Escape)
    assert viewer.window == default
    qtbot.keyClick(viewer, Qt.Key.Key_I)
    assert viewer.invert
    qtbot.keyClick(viewer, Qt.Key.Key_R)
    assert viewer.rotation == 90
    qtbot.keyClick(viewer, Qt.Key.Key_H)
    assert viewer.flip_h
    qtbot.keyClick(viewer, Qt.Key.Key_Equal)
    assert viewer.zoom == 1.0
    rows, cols = viewer.frame.shape
    center = viewer.mapFromScene(cols / 2, rows / 2)
    text = viewer.readout_text(center.toPointF())
    assert "value" in text and "x " in text
    if viewer.frame.pixel_spacing is None:
        assert "UNCALIBRATED" in viewer.notice.text()
    else:
        assert "mm" in text
