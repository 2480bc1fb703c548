"""The review workstation: worklist dock, radiograph viewer, findings dock, jobs in the status bar.

Widgets hold no business logic: the review rules live in the Qt-free `ReviewSession`
(`core/review/session.py`), whose decisions run on its serialized writer off the GUI thread;
the window maps keys onto the session and redraws what each `ReviewEvent` names. Every long job
runs through the JobRunner or the BackgroundLoader.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QPointF, QRectF, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QMessageBox

from skelex_desktop import __version__
from skelex_desktop.core.analysis.image_analysis import ImageAnalysis
from skelex_desktop.core.db.executor import SerialExecutor
from skelex_desktop.core.db.session_user import analysis_refused
from skelex_desktop.core.domain import Changes
from skelex_desktop.core.inference.reliability import map_caveat
from skelex_desktop.core.ingest.report import ImportReport
from skelex_desktop.core.review.decisions import ImageDetails
from skelex_desktop.core.review.regions import Box
from skelex_desktop.core.review.session import EventKind, ReviewEvent, ReviewSession
from skelex_desktop.core.workspace import Workspace
from skelex_desktop.ui.background import BackgroundLoader
from skelex_desktop.ui.dialogs.import_dialog import ImportDialog
from skelex_desktop.ui.panels.findings_panel import FindingsPanel
from skelex_desktop.ui.panels.job_status import JobStatus
from skelex_desktop.ui.panels.queue_status import add_queue_status
from skelex_desktop.ui.panels.worklist_panel import WorklistPanel
from skelex_desktop.ui.shortcuts import GROUP, ShortcutsDialog, shortcuts_html
from skelex_desktop.ui.viewer.canvas import RadiographView
from skelex_desktop.ui.viewer.study_grid import StudyGrid
from skelex_desktop.ui.workers import Job, JobRunner

log = logging.getLogger(__name__)
DEFAULT_SIZE = (1440, 900)


class MainWindow(QMainWindow):
    """Assembles the panels and maps reader gestures onto the review session."""

    posted = Signal(object)  # a callable from the writer thread, run on the GUI thread

    def __init__(self, workspace: Workspace, analysis_service: Any | None = None) -> None:
        super().__init__()
        self.workspace = workspace
        self.db = workspace.db
        self.reader = workspace.settings.reader
        self.runner = JobRunner()
        self.last_error = ""
        self.analysis: ImageAnalysis | None = None
        self._measuring = "length"
        self._angle_first: list[tuple[float, float]] | None = None
        self._service = analysis_service
        self.setWindowTitle(f"SKELEX Desktop {__version__} - reader {self.reader}")
        self._fit_to_screen()

        self.viewer = RadiographView()
        self.study = StudyGrid(self.viewer)
        self.study.open_requested.connect(self.open_image_of_study)
        self.setCentralWidget(self.study)
        self.worklist = WorklistPanel(self.db)
        self.findings = FindingsPanel()
        self.posted.connect(lambda call: call(), Qt.ConnectionType.QueuedConnection)
        self.session = ReviewSession(
            self.db, self.reader, self.worklist.model, SerialExecutor(self.posted.emit)
        )
        self.session.subscribe(self._on_session_event)
        left = self._dock(
            "Worklist", "worklistDock", self.worklist, Qt.DockWidgetArea.LeftDockWidgetArea
        )
        right = self._dock(
            "Findings", "findingsDock", self.findings, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self._docks = (left, right)
        self._size_docks()
        self.readout = QLabel("")
        self.statusBar().addWidget(self.readout, 1)
        self.job_status = JobStatus(self.runner)
        self.statusBar().addPermanentWidget(self.job_status)
        self.queue_status = add_queue_status(self.statusBar(), workspace.settings.database_url)

        self.loader = BackgroundLoader(self._read_frame, self._analyse)
        self.loader.frame_ready.connect(self._on_frame)
        self.loader.analysis_ready.connect(self._on_analysis)
        self.loader.failed.connect(self._on_background_failure)

        self.worklist.open_row.connect(self.open_row)
        self.worklist.import_requested.connect(self.show_import_dialog)
        self.worklist.demo_requested.connect(self.load_demo_studies)
        self.worklist.informative_requested.connect(self.order_by_informativeness)
        self.viewer.readout.connect(self.readout.setText)
        self.viewer.box_drawn.connect(self._on_box)
        self.viewer.line_drawn.connect(self._on_line)
        self.findings.overlay_toggled.connect(self.viewer.set_overlay_visible)
        self.findings.overlay_style_changed.connect(self._draw_overlay)
        self.findings.hotspot_clicked.connect(self._zoom_to_hotspot)
        self.findings.choice_made.connect(self.session.set_value)
        self.findings.confirm_clicked.connect(self.session.confirm)
        self._build_actions()
        self.worklist.refresh()
        self._restore_layout()

    # --- construction ------------------------------------------------------------------------
    def _dock(self, title: str, name: str, widget, area: Qt.DockWidgetArea) -> QDockWidget:  # noqa: ANN001
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(  # noqa: ANN001 - slot: any callable, menu: a QMenu
        self,
        text: str,
        keys: str | QKeySequence | None,
        slot,
        menu=None,
        help: str = "",
        group: str = "",
    ) -> QAction:
        """An action of the window; `help` and `group` are what F1 lists for it."""
        action = QAction(text, self)
        if keys:
            action.setShortcut(QKeySequence(keys))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if help:
            action.setStatusTip(help)
        if group:
            action.setProperty(GROUP, group)
        action.triggered.connect(slot)
        self.addAction(action)
        if menu is not None:
            menu.addAction(action)
        return action

    def _build_actions(self) -> None:
        bar = self.menuBar()
        file_menu, review, view = bar.addMenu("&File"), bar.addMenu("&Review"), bar.addMenu("&View")
        help_menu = bar.addMenu("&Help")
        self._action(
            "Import...",
            "Ctrl+O",
            self.show_import_dialog,
            file_menu,
            "Import folders, files or a DICOMDIR",
        )
        self._action("Export labelled set...", "Ctrl+E", self.show_export_dialog, file_menu)
        self._training_action(file_menu)
        self._action("Model versions...", "Ctrl+Shift+M", self.show_versions_dialog, file_menu)
        self.demo_action = self._action(
            "Load demo studies", "Ctrl+Shift+D", self.load_demo_studies, file_menu
        )
        self._action("Refresh worklist", "F5", lambda: self.worklist.refresh(), file_menu)
        file_menu.addSeparator()
        self._action("Quit", "Ctrl+Q", self.close, file_menu)

        self.undo_action = self._action("Undo", "Ctrl+Z", self.session.undo, review)
        self.redo_action = self._action("Redo", "Ctrl+Shift+Z", self.session.redo, review)
        self._show_history()
        enter = (
            "Open the selected worklist row / confirm the shown AI suggestions (not those of "
            "weak heads or maps, AUROC < 0.70), then go to the next unreviewed image"
        )
        self._action(
            "Confirm shown suggestions", "Return", self.confirm_or_open, review, enter, "Enter"
        )
        self._action("Confirm (keypad)", "Enter", self.confirm_or_open, None, enter, "Enter")
        self._action("Mark current task uncertain", "U", self.session.mark_uncertain, review)
        self._action("Next task", "T", lambda: self.session.step_task(1), review)
        self._action("Previous task", "Shift+T", lambda: self.session.step_task(-1), review)
        self._action("Next image", "N", lambda: self.step_image(1), review)
        self._action("Previous image", "P", lambda: self.step_image(-1), review)
        self._action("What the AI changed...", "Ctrl+Shift+I", self.show_influence_dialog, review)
        self._action(
            "Reader agreement...",
            "Ctrl+Shift+K",
            self.show_agreement_dialog,
            review,
            "Inter-reader agreement per task: Cohen's and Fleiss' kappa with 95% intervals",
        )
        self.study_action = self._action(
            "Study view: the other views beside the image",
            "S",
            self._show_companions,
            view,
        )
        self.study_action.setCheckable(True)
        self.study_action.setChecked(True)
        self.prior_action = self._action(
            "Prior study beside the current one", "O", self._show_companions, view
        )
        self.prior_action.setCheckable(True)
        self.link_action = self._action(
            "Link window/level of the study view",
            "K",
            lambda: self.study.set_linked(self.link_action.isChecked()),
            view,
        )
        self.link_action.setCheckable(True)
        self._action("Measure a length", "L", lambda: self.start_measuring("length"), review)
        self._action(
            "Measure an angle (two lines)", "A", lambda: self.start_measuring("angle"), review
        )
        self.box_action = self._action("Draw box region", "B", self.toggle_box_mode, review)
        self.box_action.setCheckable(True)
        for digit in range(10):
            self._action(
                f"Choose class {digit}",
                str(digit),
                self._digit_slot(digit),
                help="Choose that class for the current task (binary: 0 no, 1 yes; KL grade 0-4)",
                group="0-9",
            )

        self._action("Toggle error map", "E", self.findings.overlay_toggle.toggle, view)
        self._action("Fit to window", "F", self.viewer.fit, view)
        self._action("Actual size (1:1)", "=", self.viewer.actual_size, view)
        self._action("Zoom in", "+", lambda: self.viewer.zoom_by(1.25), view)
        self._action("Zoom out", "-", lambda: self.viewer.zoom_by(0.8), view)
        self._action("Invert", "I", self.viewer.toggle_invert, view)
        self._action("Rotate 90 degrees", "R", lambda: self.viewer.rotate_by(90), view)
        self._action("Flip horizontal", "H", lambda: self.viewer.toggle_flip(True), view)
        self._action("Flip vertical", "V", lambda: self.viewer.toggle_flip(False), view)
        self._action("Window: next preset", "W", self.cycle_preset, view)
        self._action("Window: reset", "Escape", lambda: self.viewer.apply_preset("default"), view)
        for n, name in enumerate(("bone", "soft tissue", "auto"), start=1):
            self._action(f"Window: {name}", f"Alt+{n}", self._preset_slot(name), view)
        self._action(
            "Find in the worklist",
            "Ctrl+F",
            self.worklist.focus_search,
            view,
            "Find in the worklist (Escape goes back to the list)",
        )
        self._action("Go to the worklist", "Ctrl+L", self.focus_worklist, view)
        self._action("Go to the image", "Ctrl+I", self.viewer.setFocus, view)
        self._action("Keyboard shortcuts", "F1", self.show_shortcuts, help_menu, "This list")
        self._action("About SKELEX Desktop", "Shift+F1", self.show_about, help_menu)

    def _digit_slot(self, digit: int):  # noqa: ANN202
        return lambda: self.session.choose(digit)

    def _preset_slot(self, name: str):  # noqa: ANN202
        return lambda: self.viewer.apply_preset(name)

    # --- background work -----------------------------------------------------------------------
    @staticmethod
    def _read_frame(path: Path, frame: int) -> Any:
        """Decode and prepare for display (runs in the background loader)."""
        from skelex_desktop.core.ingest.pixels import read_frame
        from skelex_desktop.ui.viewer.rendering import prepare_display

        return prepare_display(read_frame(path, frame))

    @property
    def service(self) -> Any:
        """The error-map service of the active model (created on first use)."""
        if self._service is None:
            from skelex_desktop.core.inference.service import ErrorMapService

            self._service = ErrorMapService(self.workspace.settings)
        return self._service

    def _analyse(self, image_id: int) -> ImageAnalysis:
        """The analysis pipeline for one image, and its overlay (runs in the background
        loader)."""
        from skelex_desktop.core.analysis.pipeline import analyse_images
        from skelex_desktop.ui.viewer.rendering import overlay_source

        done: list[ImageAnalysis] = []
        try:
            summary = analyse_images(self.db, self.service, [image_id], on_image=done.append)
        except Exception as exc:  # a team database lets only an admin register the models
            message = analysis_refused(exc)
            if message is None:
                raise
            raise PermissionError(message) from exc
        if image_id in summary.failed:
            raise ValueError(summary.failed[image_id])
        (analysis,) = done
        result = analysis.result
        analysis.overlay = overlay_source(
            result.error_map, result.extra.get("display_max"), result.extra.get("anatomy")
        )
        return analysis

    # --- launch and focus -----------------------------------------------------------------------
    def start(self) -> None:
        """At launch: the worklist has the focus, the first image that needs a reader is open."""
        self.session.start()
        self.focus_worklist()

    def focus_worklist(self) -> None:
        self.worklist.table.setFocus()

    def _fit_to_screen(self) -> None:
        """The default size, shrunk to the screen's available area (1366x768 laptops)."""
        area = self.screen().availableGeometry()
        self.resize(min(DEFAULT_SIZE[0], area.width()), min(DEFAULT_SIZE[1], area.height()))

    def _size_docks(self) -> None:
        width = self.width()
        sizes = [min(470, int(width * 0.30)), min(360, int(width * 0.26))]
        self.resizeDocks(list(self._docks), sizes, Qt.Orientation.Horizontal)

    # --- the review session -------------------------------------------------------------------
    @property
    def current(self) -> ImageDetails | None:
        """The open image (the session's)."""
        return self.session.current

    def open_row(self, row: int) -> None:
        self.session.open_row(row)

    def open_image(self, image_id: int) -> None:
        self.session.open(image_id)

    def _on_session_event(self, event: ReviewEvent) -> None:
        """Redraw what the session says changed."""
        if event.kind == EventKind.OPENED:
            self._show_opened(event.prefetch)
        elif event.kind == EventKind.CHANGED:
            self._show_changes(event.changes)
        elif event.kind == EventKind.CURSOR:
            self.findings.set_current_task(self.session.task_index)
            self._draw_driver()
        elif event.kind == EventKind.HISTORY:
            self._show_history()
        elif event.kind == EventKind.MESSAGE:
            self.statusBar().showMessage(event.message, 5000)
        elif event.kind == EventKind.ERROR:
            self.show_error(event.message)

    def _show_opened(self, prefetch: tuple[ImageDetails, ...]) -> None:
        current = self.session.current
        assert current is not None
        if self.session.row >= 0 and self.worklist.current_row() != self.session.row:
            self.worklist.table.selectRow(self.session.row)
        self.analysis = None
        self.findings.set_hotspots([])
        self.findings.analysis_status.setText("Analysing with the error map...")
        self._show_tasks()
        self.loader.request(current.image_id, current.file_path, current.frame)
        self._show_companions()
        for ahead in prefetch:
            self.loader.request(ahead.image_id, ahead.file_path, ahead.frame, prefetch=True)
        if not self.worklist.search.hasFocus():
            self.viewer.setFocus()

    def _show_companions(self) -> None:
        """The study view: the other images of the study, and the prior when asked (O)."""
        shown = (
            self.session.companions(self.prior_action.isChecked())
            if self.study_action.isChecked() or self.prior_action.isChecked()
            else []
        )
        if not self.study_action.isChecked():
            shown = [c for c in shown if c.prior]
        self.study.show_companions(shown)
        for companion in self.study.companions:
            image = companion.image
            self.loader.request(image.image_id, image.file_path, image.frame, analyse=False)

    def open_image_of_study(self, image_id: int) -> None:
        """A click on a companion: open it (its worklist row when it is listed)."""
        row = self.worklist.model.row_of(image_id)
        if row is not None:
            self.session.open_row(row)
        else:
            self.session.open(image_id)

    def _show_changes(self, changes: Changes) -> None:
        if self.current is not None and self.current.image_id in changes.images:
            self._show_tasks()
            self._draw_regions()
        for image_id in changes.images:
            self.worklist.model.update_image(image_id)

    def _show_tasks(self) -> None:
        self.findings.set_tasks(self.session.tasks, self.session.task_index)
        self._draw_driver()

    def _show_history(self) -> None:
        self.undo_action.setEnabled(self.session.can_undo)
        self.redo_action.setEnabled(self.session.can_redo)

    def _on_frame(self, image_id: int, frame: Any) -> None:
        if self.current is None or image_id != self.current.image_id:
            self.study.set_frame(image_id, frame)
            return
        self.viewer.set_frame(frame, self.current.laterality, self.current.view)
        self._draw_regions()
        if self.analysis is not None:
            self._draw_overlay()

    def _on_analysis(self, image_id: int, analysis: ImageAnalysis) -> None:
        if self.current is None or image_id != self.current.image_id:
            return
        self.analysis = analysis
        result = analysis.result
        spots = [((h.x0, h.y0, h.x1, h.y1), h.score) for h in result.hotspots]
        self.findings.set_hotspots(spots)
        self.viewer.set_hotspots([box for box, _ in spots])
        verdict = "" if result.abnormal is None else (" - abnormal" if result.abnormal else "")
        caveat = map_caveat(self.service.runtime.manifest.errormap)
        self.findings.analysis_status.setText(
            f"{result.model}: image score {result.score:.3g}{verdict}; "
            f"{len(spots)} hotspots{' (cached)' if result.cached else ''}"
            + (f"\n{caveat}" if caveat else "")
        )
        if self.viewer.frame is not None:
            self._draw_overlay()
        self.session.reload()  # the analysis stored predictions: new suggestions
        self.worklist.model.update_image(image_id)

    def _on_background_failure(self, image_id: int, what: str, message: str) -> None:
        if self.current is not None and image_id == self.current.image_id:
            if what == "analysis":
                self.findings.analysis_status.setText(f"No error map: {message}")
            self.show_error(f"Cannot load the {what} of image {image_id}: {message}", modal=False)

    def _draw_overlay(self) -> None:
        if self.analysis is None or self.viewer.frame is None:
            return
        try:
            self.viewer.set_overlay(self.analysis.overlay, **self.findings.overlay_style())
        except ValueError as exc:
            self.show_error(str(exc), modal=False)
            return
        self.viewer.set_overlay_visible(self.findings.overlay_toggle.isChecked())

    def _zoom_to_hotspot(self, index: int) -> None:
        if self.analysis is not None and 0 <= index < len(self.analysis.result.hotspots):
            h = self.analysis.result.hotspots[index]
            self.viewer.zoom_to((h.x0, h.y0, h.x1, h.y1))

    def _draw_regions(self) -> None:
        """Reader boxes and measurements of the open image."""
        if self.current is None:
            return
        self.viewer.set_regions([(b.x0, b.y0, b.x1, b.y1) for b in self.session.regions()])
        measurements = self.session.measurements()
        self.viewer.set_measurements([(list(m.points), m.label()) for m in measurements])
        self.findings.set_measurements([m.label() for m in measurements])

    def _draw_driver(self) -> None:
        """The region that drove the current task's suggestion (region-guided heads)."""
        state = self.session.current_task
        box = state.driver.get("box") if state is not None and state.driver else None
        self.viewer.set_driver(tuple(box) if box and state.driver.get("index") else None)

    # --- decisions and navigation ----------------------------------------------------------------
    def confirm_or_open(self) -> None:
        """Enter: open the selected worklist row when the worklist has the focus (or nothing is
        open), else confirm the shown suggestions."""
        if self.worklist.table.hasFocus() or self.current is None:
            row = self.worklist.current_row()
            if row >= 0:
                self.session.open_row(row)
            return
        self.session.confirm()

    def start_measuring(self, kind: str) -> None:
        """L: drag a length; A: drag two lines, the angle between them is stored."""
        if self.current is None or self.viewer.frame is None:
            return
        self.viewer.measure_mode = True
        self._measuring = kind
        self._angle_first = None
        spacing = self.viewer.frame.pixel_spacing
        unit = "mm" if spacing is not None else "pixels (uncalibrated: no pixel spacing)"
        self.statusBar().showMessage(
            f"Length: drag from one point to the other ({unit})"
            if kind == "length"
            else "Angle: drag the first line, then the second",
            8000,
        )

    def _on_line(self, start: QPointF, end: QPointF) -> None:
        line = [(start.x(), start.y()), (end.x(), end.y())]
        if self._measuring == "angle" and self._angle_first is None:
            self._angle_first = line
            self.statusBar().showMessage("Angle: now drag the second line", 8000)
            return
        points = (self._angle_first or []) + line
        self.viewer.measure_mode = False
        self.session.measure(self._measuring, points)
        self._angle_first = None

    def toggle_box_mode(self) -> None:
        self.viewer.box_mode = self.box_action.isChecked()
        self.statusBar().showMessage(
            "Box mode: drag on the image to draw a region for the current task"
            if self.viewer.box_mode
            else "Box mode off",
            5000,
        )

    def _on_box(self, rect: QRectF) -> None:
        self.session.add_region(Box(rect.left(), rect.top(), rect.right(), rect.bottom()))
        self.box_action.setChecked(False)
        self.viewer.box_mode = False

    def step_image(self, step: int) -> None:
        """N / P: the row after / before the selected one."""
        self.session.step_image(step, self.worklist.current_row())

    def cycle_preset(self) -> None:
        names = ["default", "bone", "soft tissue", "auto"]
        current = next(
            (n for n, w in self.viewer.presets.items() if w == self.viewer.window), "default"
        )
        nxt = names[(names.index(current) + 1) % len(names)] if current in names else "default"
        self.viewer.apply_preset(nxt)
        self.statusBar().showMessage(f"Window: {nxt}", 3000)

    # --- jobs and dialogs ----------------------------------------------------------------------
    def run_job(self, job: Job, on_success) -> Job:  # noqa: ANN001 - any callable
        job.succeeded.connect(on_success)
        job.failed.connect(self.show_error)
        job.cancelled.connect(lambda: self.statusBar().showMessage(f"{job.title}: cancelled", 8000))
        job.finished.connect(lambda: self.worklist.refresh())
        return self.runner.start(job)

    def show_error(self, message: str, modal: bool = True) -> None:
        self.last_error = message
        log.error(message)
        self.statusBar().showMessage(message, 15000)
        if modal:
            QMessageBox.warning(self, "SKELEX Desktop", message)

    def show_import_dialog(self) -> ImportDialog:
        dialog = ImportDialog(self.workspace, self.runner, self)
        dialog.imported.connect(lambda _report: self.worklist.refresh())
        dialog.show()
        return dialog

    def open_files(self, paths: list[Path]) -> ImportDialog:
        """Import files or folders handed to the application (a file manager's Open With) and
        show the first of their images, already imported ones included. The import dialog
        stays open when a file was skipped or failed, so its reason can be read."""
        dialog = self.show_import_dialog()
        dialog.add_sources(paths)
        dialog.imported.connect(lambda report: self._open_first_imported(dialog, report))
        dialog.start()
        return dialog

    def _open_first_imported(self, dialog: ImportDialog, report: ImportReport | None) -> None:
        if report is None:
            return
        ids = [image_id for result in report.files for image_id in result.image_ids]
        if ids:
            self.open_image(ids[0])
        if ids and not (report.failed or report.skipped):
            dialog.close()

    def show_export_dialog(self):  # noqa: ANN201 - ExportDialog, imported lazily
        from skelex_desktop.ui.dialogs.export_dialog import ExportDialog

        dialog = ExportDialog(self.workspace, self.runner, self)
        dialog.exported.connect(
            lambda result: self.statusBar().showMessage(f"Export: {result.summary()}", 15000)
        )
        dialog.show()
        return dialog

    def order_by_informativeness(self) -> Job:
        """Rank unlabelled images for the active heads in the background, then show them."""
        from skelex_desktop.core.heads.informative import informative_image_ids

        db, data_dir = self.db, self.workspace.settings.data_dir
        service = self.service

        def rank(progress) -> list[int]:  # noqa: ANN001 - Progress
            progress.set_status("ranking unlabelled images")
            return informative_image_ids(db, data_dir, service.runtime.manifest)

        def show(ids: list[int]) -> None:
            if ids:
                self.worklist.show_ranked(ids)
                self.statusBar().showMessage(f"{len(ids)} images, most informative first", 8000)
            else:
                self.worklist.reset_order()
                self.show_error(
                    "No unlabelled image has a task-head prediction yet: analyse the images, "
                    "label some and train a head (File > Train task heads).",
                    modal=False,
                )

        job = Job("Active-learning order", rank)
        job.succeeded.connect(show)
        job.failed.connect(self.show_error)
        return self.runner.start(job)

    def show_influence_dialog(self):  # noqa: ANN201 - InfluenceDialog, imported lazily
        from skelex_desktop.ui.dialogs.influence_dialog import InfluenceDialog

        dialog = InfluenceDialog(self.db, self)
        dialog.show()
        return dialog

    def show_agreement_dialog(self):  # noqa: ANN201 - AgreementDialog, imported lazily
        from skelex_desktop.ui.dialogs.agreement_dialog import AgreementDialog

        dialog = AgreementDialog(self.db, self.runner, self)
        dialog.show()
        return dialog

    def _training_action(self, menu) -> QAction:  # noqa: ANN001 - a QMenu
        """File > Train task heads; in the reader edition (no torch) it says that training needs
        the full edition and is disabled."""
        from skelex_desktop.core.training.edition import is_full_edition, needs_full_edition

        if is_full_edition():
            return self._action(
                "Train task heads...", "Ctrl+Shift+T", self.show_training_dialog, menu
            )
        action = self._action(
            "Train task heads (needs the full edition)",
            "",
            self.show_training_dialog,
            menu,
            needs_full_edition("Training task heads"),
        )
        action.setEnabled(False)
        return action

    def show_training_dialog(self):  # noqa: ANN201 - TrainingDialog, imported lazily
        from skelex_desktop.ui.dialogs.training_dialog import TrainingDialog

        dialog = TrainingDialog(self.workspace, self.runner, self)
        dialog.trained.connect(lambda _result: self._after_training())
        dialog.show()
        return dialog

    def show_versions_dialog(self):  # noqa: ANN201 - VersionsDialog, imported lazily
        from skelex_desktop.ui.dialogs.versions_dialog import VersionsDialog

        dialog = VersionsDialog(self.workspace, self.runner, self)
        dialog.activated.connect(lambda _view: self._after_training())
        dialog.show()
        return dialog

    def _after_training(self) -> None:
        """Head predictions changed (training, activation): show them for the open image and
        in the worklist."""
        self.loader.analyses.clear()
        self.worklist.refresh()
        self.session.reload()

    def load_demo_studies(self) -> Job:
        from skelex_desktop.core.demo import create_demo_studies

        workspace = self.workspace
        self.worklist.demo_button.setEnabled(False)
        job = Job("Demo studies", lambda progress: create_demo_studies(workspace, progress))
        job.finished.connect(lambda: self.worklist.demo_button.setEnabled(True))

        def loaded(report: ImportReport) -> None:
            self.statusBar().showMessage(f"Demo studies: {report.summary()}", 15000)
            if self.current is None:
                self.worklist.refresh()
                self.start()

        return self.run_job(job, loaded)

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(shortcuts_html(self.actions()), self)
        dialog.show()
        return dialog

    def about_text(self) -> str:
        from skelex_desktop.core.inference.registry import Registry

        name = self.workspace.settings.active_model
        try:
            manifest = Registry.from_settings(self.workspace.settings).manifest(name)
            licence = manifest.data.get("licence") or manifest.data.get("license") or "unknown"
            model = f"Model package: {manifest.name} {manifest.version} - licence: {licence}"
            if manifest.name == "skelex-demo":
                model += "<br><b>Demo model: synthetic data, not for clinical use.</b>"
        except Exception as exc:  # the About box says what is wrong instead of failing
            model = f"Model package {name!r}: not available ({exc})"
        return (
            f"<h3>SKELEX Desktop {__version__}</h3>"
            f"<p>Review of musculoskeletal radiographs with the SKELEX foundation model.</p>"
            f"<p>{model}</p><p>Data: {self.workspace.settings.data_dir}</p>"
        )

    def show_about(self) -> None:
        QMessageBox.about(self, "About SKELEX Desktop", self.about_text())

    # --- layout persistence --------------------------------------------------------------------
    def _layout_settings(self) -> QSettings:
        path = self.workspace.settings.data_dir / "window.ini"
        return QSettings(str(path), QSettings.Format.IniFormat)

    def _restore_layout(self) -> None:
        """The saved layout, unless it was saved on a larger screen than this one."""
        stored = self._layout_settings()
        geometry = stored.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
            area = self.screen().availableGeometry()
            if self.width() > area.width() or self.height() > area.height():
                self._fit_to_screen()
                self._size_docks()
                return
        for key, restore in (
            ("state", self.restoreState),
            ("columns", self.worklist.table.horizontalHeader().restoreState),
        ):
            value = stored.value(key)
            if isinstance(value, QByteArray):
                restore(value)

    def save_layout(self) -> None:
        stored = self._layout_settings()
        stored.setValue("geometry", self.saveGeometry())
        stored.setValue("state", self.saveState())
        stored.setValue("columns", self.worklist.table.horizontalHeader().saveState())
        stored.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_layout()
        if self.queue_status is not None:
            self.queue_status.stop()
        self.runner.cancel_all()
        self.loader.stop()
        self.session.close()  # every queued decision is stored before the window goes
        super().closeEvent(event)
