"""Main window: worklist with filters, image preview, import and demo actions, job status."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QModelIndex, QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from skelex_desktop import __version__
from skelex_desktop.core.domain import ImageStatus
from skelex_desktop.core.workspace import Workspace
from skelex_desktop.ui.models.worklist_model import WorklistModel
from skelex_desktop.ui.panels.image_preview import ImagePreview
from skelex_desktop.ui.panels.job_status import JobStatus
from skelex_desktop.ui.workers import Job, JobRunner


class MainWindow(QMainWindow):
    """Assembles the panels; every action runs a core function through the JobRunner."""

    def __init__(self, workspace: Workspace) -> None:
        super().__init__()
        self.workspace = workspace
        self.runner = JobRunner()
        self.last_error = ""
        self.setWindowTitle(f"SKELEX Desktop {__version__} - {workspace.settings.reader}")
        self.resize(1280, 800)

        self.model = WorklistModel(workspace.db)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setSortIndicator(2, Qt.SortOrder.DescendingOrder)
        self.table.verticalHeader().setDefaultSectionSize(52)
        self.table.verticalHeader().hide()
        self.table.selectionModel().currentRowChanged.connect(self._on_current_row)

        self.search = QLineEdit()
        self.search.setPlaceholderText("Search patient, name, accession, body part")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(lambda text: self.model.set_query(text=text or None))
        self.status_filter = QComboBox()
        self.status_filter.addItem("All statuses", None)
        for status in ImageStatus:
            self.status_filter.addItem(status.value.replace("_", " "), status.value)
        self.status_filter.currentIndexChanged.connect(
            lambda _i: self.model.set_query(status=self.status_filter.currentData())
        )
        self.count_label = QLabel("")

        self.empty_banner = self._build_empty_banner()
        filters = QHBoxLayout()
        filters.addWidget(self.search, 1)
        filters.addWidget(self.status_filter)
        filters.addWidget(self.count_label)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addLayout(filters)
        left_layout.addWidget(self.empty_banner)
        left_layout.addWidget(self.table, 1)

        self.preview = ImagePreview()
        self.splitter = QSplitter()
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.preview)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.setCentralWidget(self.splitter)

        self._build_actions()
        self.job_status = JobStatus(self.runner)
        self.statusBar().addPermanentWidget(self.job_status)
        self.model.modelReset.connect(self._update_counts)
        self.model.rowsInserted.connect(self._update_counts)
        self.refresh()
        self._restore_layout()

    # --- construction ------------------------------------------------------------------------
    def _build_empty_banner(self) -> QWidget:
        banner = QWidget()
        banner.setObjectName("emptyBanner")
        banner.setStyleSheet("#emptyBanner { background: #24324a; border-radius: 6px; }")
        text = QLabel(
            "The worklist is empty. Create about 40 synthetic demo studies to try SKELEX "
            "Desktop, or import your own DICOM, DICOMDIR or PNG/TIFF files."
        )
        text.setWordWrap(True)
        text.setStyleSheet("color: white;")
        self.demo_button = QPushButton("Create demo studies")
        self.demo_button.clicked.connect(self.create_demo_studies)
        import_button = QPushButton("Import folder...")
        import_button.clicked.connect(self.import_folder)
        layout = QHBoxLayout(banner)
        layout.addWidget(text, 1)
        layout.addWidget(self.demo_button)
        layout.addWidget(import_button)
        return banner

    def _build_actions(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("mainToolbar")
        self.import_folder_action = QAction("Import folder...", self)
        self.import_folder_action.setShortcut(QKeySequence("Ctrl+O"))
        self.import_folder_action.triggered.connect(self.import_folder)
        self.import_files_action = QAction("Import files...", self)
        self.import_files_action.setShortcut(QKeySequence("Ctrl+Shift+O"))
        self.import_files_action.triggered.connect(self.import_files)
        self.demo_action = QAction("Create demo studies", self)
        self.demo_action.triggered.connect(self.create_demo_studies)
        refresh = QAction("Refresh", self)
        refresh.setShortcut(QKeySequence("F5"))
        refresh.triggered.connect(self.refresh)
        quit_action = QAction("Quit", self)
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        quit_action.triggered.connect(self.close)
        for action in (self.import_folder_action, self.import_files_action, self.demo_action):
            file_menu.addAction(action)
            toolbar.addAction(action)
        toolbar.addAction(refresh)
        file_menu.addSeparator()
        file_menu.addAction(quit_action)

    # --- behaviour ---------------------------------------------------------------------------
    def refresh(self) -> None:
        self.model.reload()

    def _update_counts(self) -> None:
        shown, total = self.model.rowCount(), self.model.total
        self.count_label.setText(f"{total} images" if shown >= total else f"{shown} of {total}")
        filtered = bool(self.search.text()) or self.status_filter.currentData() is not None
        self.empty_banner.setVisible(total == 0 and not filtered)

    def _on_current_row(self, current: QModelIndex, _previous: QModelIndex) -> None:
        row = self.model.row_at(current.row())
        if row is None:
            self.preview.clear()
            return
        self.preview.show_file(Path(row.file_path), row.frame)

    def run_job(self, job: Job, on_success) -> Job:  # noqa: ANN001 - any callable
        job.succeeded.connect(on_success)
        job.failed.connect(self._show_error)
        job.cancelled.connect(lambda: self.statusBar().showMessage(f"{job.title}: cancelled", 8000))
        job.finished.connect(self.refresh)
        return self.runner.start(job)

    def _show_error(self, message: str) -> None:
        self.last_error = message
        self.statusBar().showMessage(message, 15000)
        QMessageBox.warning(self, "SKELEX Desktop", message)

    def import_paths(self, paths: list[Path], copy: bool = False) -> Job:
        from skelex_desktop.core.ingest import ImportOptions, import_paths

        options = ImportOptions(
            data_dir=self.workspace.settings.data_dir,
            copy=copy,
            reader=self.workspace.settings.reader,
        )
        db = self.workspace.db
        job = Job("Import", lambda progress: import_paths(db, paths, options, progress))
        return self.run_job(job, self._on_import_done)

    def _on_import_done(self, report) -> None:  # noqa: ANN001 - ImportReport
        self.statusBar().showMessage(f"Import finished: {report.summary()}", 15000)

    def import_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import folder")
        if folder:
            self.import_paths([Path(folder)])

    def import_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self,
            "Import files",
            filter="Images (*.dcm *.dicom DICOMDIR *.png *.jpg *.jpeg *.tif *.tiff);;All files (*)",
        )
        if files:
            self.import_paths([Path(f) for f in files])

    def create_demo_studies(self) -> Job:
        from skelex_desktop.core.demo import create_demo_studies

        workspace = self.workspace
        self.demo_button.setEnabled(False)
        job = Job("Demo studies", lambda progress: create_demo_studies(workspace, progress))
        job.finished.connect(lambda: self.demo_button.setEnabled(True))
        return self.run_job(job, self._on_import_done)

    # --- layout persistence --------------------------------------------------------------------
    def _layout_settings(self) -> QSettings:
        path = self.workspace.settings.data_dir / "window.ini"
        return QSettings(str(path), QSettings.Format.IniFormat)

    def _restore_layout(self) -> None:
        stored = self._layout_settings()
        for key, restore in (
            ("geometry", self.restoreGeometry),
            ("state", self.restoreState),
            ("splitter", self.splitter.restoreState),
            ("columns", self.table.horizontalHeader().restoreState),
        ):
            value = stored.value(key)
            if isinstance(value, QByteArray):
                restore(value)

    def save_layout(self) -> None:
        stored = self._layout_settings()
        stored.setValue("geometry", self.saveGeometry())
        stored.setValue("state", self.saveState())
        stored.setValue("splitter", self.splitter.saveState())
        stored.setValue("columns", self.table.horizontalHeader().saveState())
        stored.sync()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.save_layout()
        self.runner.cancel_all()
        super().closeEvent(event)
