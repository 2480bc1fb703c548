"""The training dialog trains a real head (child process) on labelled demo studies."""

from __future__ import annotations

from sqlalchemy import select

from skelex_desktop.core.analysis.pipeline import analyse_images
from skelex_desktop.core.db.models import Image, ModelVersion
from skelex_desktop.core.inference.service import ErrorMapService
from skelex_desktop.core.review.labels import confirm_label
from skelex_desktop.ui.main_window import MainWindow


def test_train_from_the_dialog_and_see_metrics(qtbot, demo_workspace, no_modal) -> None:
    db = demo_workspace.db
    with db.read() as s:
        ids = list(s.scalars(select(Image.id).order_by(Image.id)))
    for n, image_id in enumerate(ids):
        confirm_label(db, image_id, "fracture", n % 2, "dr.ui")
    analyse_images(db, ErrorMapService(demo_workspace.settings), ids)
    win = MainWindow(demo_workspace)
    qtbot.addWidget(win)
    dialog = win.show_training_dialog()
    assert dialog.start() is None and "Tick at least one task" in dialog.status.text()
    dialog.set_checked(["fracture"])
    dialog.folds.setValue(2)
    with qtbot.waitSignal(dialog.trained, timeout=120_000):
        dialog.start()
    assert dialog.metrics.rowCount() == 1 and dialog.metrics.item(0, 0).text() == "fracture"
    assert dialog.metrics.item(0, 1).text()  # AUROC shown
    assert "Trained head-fracture version 1" in dialog.status.text()
    # live curves: per-fold points (a fold of 3 images may lack a class, then no AUROC point)
    steps = {step for points in dialog.curves.series.values() for step, _ in points}
    assert steps == {1, 2} and "fracture balanced_accuracy" in dialog.curves.series
    assert len(dialog.plot_labels) == 2  # ROC and calibration of the one task
    assert all(not label.pixmap().isNull() for label in dialog.plot_labels)
    with db.read() as s:
        version = s.scalars(select(ModelVersion).where(ModelVersion.name == "head-fracture")).one()
    assert version.active and version.metrics["cv"]["fracture"]["auroc"] is not None
    assert no_modal == []


def test_most_informative_first_after_training(qtbot, demo_workspace, no_modal) -> None:
    from skelex_desktop.core.heads.training_job import train_head

    db = demo_workspace.db
    with db.read() as s:
        ids = list(s.scalars(select(Image.id).order_by(Image.id)))
    win = MainWindow(demo_workspace)
    qtbot.addWidget(win)
    order = win.worklist.order
    with qtbot.waitSignal(win.runner.jobs_changed, timeout=5_000):
        order.setCurrentIndex(order.count() - 1)  # no head yet: explained, order reset
    qtbot.waitUntil(lambda: order.currentIndex() == 0, timeout=30_000)
    assert "No unlabelled image has a task-head prediction" in win.last_error

    labelled = ids[:4]
    for n, image_id in enumerate(labelled):
        confirm_label(db, image_id, "fracture", n % 2, "dr.ui")
    analyse_images(db, ErrorMapService(demo_workspace.settings), ids)
    train_head(db, demo_workspace.settings, ["fracture"], folds=2, seed=0)
    order.setCurrentIndex(order.count() - 1)
    qtbot.waitUntil(lambda: win.worklist.model.total == len(ids) - len(labelled), timeout=30_000)
    shown = {win.worklist.model.row_at(i).image_id for i in range(win.worklist.model.total)}
    assert shown == set(ids) - set(labelled)


def test_versions_dialog_rolls_back_and_recomputes(qtbot, demo_workspace, no_modal) -> None:
    from skelex_desktop.core.heads.training_job import train_head

    db, settings = demo_workspace.db, demo_workspace.settings
    with db.read() as s:
        ids = list(s.scalars(select(Image.id).order_by(Image.id)))
    for n, image_id in enumerate(ids):
        confirm_label(db, image_id, "implant", n % 2, "dr.ui")
    analyse_images(db, ErrorMapService(settings), ids)
    train_head(db, settings, ["implant"], folds=2, seed=0)
    train_head(db, settings, ["implant"], folds=2, seed=1)
    win = MainWindow(demo_workspace)
    qtbot.addWidget(win)
    dialog = win.show_versions_dialog()
    names = {(v.name, v.version, v.active) for v in dialog.views}
    assert {("head-implant", "1", False), ("head-implant", "2", True)} <= names
    assert (
        "implant: auroc"
        in dialog.table.item(
            next(i for i, v in enumerate(dialog.views) if v.name == "head-implant"), 6
        ).text()
    )
    dialog.select("head-implant", "1")
    job = dialog.activate_selected()
    assert job is not None
    qtbot.waitUntil(lambda: "predictions recomputed" in dialog.status.text(), timeout=60_000)
    active = {(v.name, v.version) for v in dialog.views if v.active}
    assert ("head-implant", "1") in active and ("head-implant", "2") not in active


def test_region_guided_suggestion_names_its_region(qtbot, demo_workspace, no_modal) -> None:
    from PySide6.QtCore import Qt

    from skelex_desktop.core.heads.training_job import train_head

    db, settings = demo_workspace.db, demo_workspace.settings
    with db.read() as s:
        ids = list(s.scalars(select(Image.id).order_by(Image.id)))
    for n, image_id in enumerate(ids):
        confirm_label(db, image_id, "tumour_category", ["benign", "none"][n % 2], "dr.ui")
    analyse_images(db, ErrorMapService(settings), ids)
    train_head(db, settings, ["tumour_category"], folds=2, seed=0)
    win = MainWindow(demo_workspace)
    qtbot.addWidget(win)
    win.show()
    win.open_row(0)
    qtbot.waitUntil(lambda: win.analysis is not None, timeout=120_000)
    while win.findings.current_state().name != "tumour_category":
        qtbot.keyClick(win.viewer, Qt.Key.Key_T)
    state = win.findings.current_state()
    assert state.method == "task head (region-guided)" and state.driver is not None
    row = next(r for r in win.findings.rows if r.state.name == "tumour_category")
    assert f"from {state.driver['label']}" in row.ai.text()
    assert len(win.viewer.driver_items) == (1 if state.driver["index"] else 0)
