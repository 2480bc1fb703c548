"""Import dialog: folders, files or a DICOMDIR; progress, Cancel, and the per-file report."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QListWidget,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from skelex_desktop.core.workspace import Workspace
from skelex_desktop.ui.dialogs.job_dialog import JobDialog
from skelex_desktop.ui.workers import Job, JobRunner


class ImportDialog(JobDialog):
    """Choose sources, run the import in the background, then show what happened to each file.

    `imported` carries the ImportReport when an import ends (cancelled imports keep what they
    finished, so the worklist refreshes then too).
    """

    imported = Signal(object)

    def __init__(self, workspace: Workspace, runner: JobRunner, parent=None) -> None:  # noqa: ANN001
        super().__init__(
            runner,
            "Import",
            "Cancel import",
            "Add folders, files or a DICOMDIR, then Import.",
            parent,
        )
        self.setWindowTitle("Import studies")
        self.resize(760, 520)
        self.workspace = workspace
        self.report = None
        self.sources = QListWidget()
        add_folder = QPushButton("Add folder...")
        add_folder.clicked.connect(self._add_folder)
        add_files = QPushButton("Add files or DICOMDIR...")
        add_files.clicked.connect(self._add_files)
        self.copy = QCheckBox("Copy files into the managed store (otherwise referenced in place)")
        self.start_button.setObjectName("startImportButton")
        self.start_button.clicked.connect(self.start)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["File", "Outcome", "Reason"])
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        buttons = QHBoxLayout()
        for button in (add_folder, add_files):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.sources)
        layout.addLayout(buttons)
        layout.addWidget(self.copy)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)

    def add_sources(self, paths: list[Path]) -> None:
        for path in paths:
            self.sources.addItem(str(path))

    def _add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import folder")
        if folder:
            self.add_sources([Path(folder)])

    def _add_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self,
            "Import files",
            filter="Images (*.dcm *.dicom DICOMDIR *.png *.jpg *.jpeg *.tif *.tiff);;All files (*)",
        )
        self.add_sources([Path(f) for f in files])

    def start(self) -> Job | None:
        from skelex_desktop.core.ingest import ImportOptions, import_paths

        paths = [Path(self.sources.item(i).text()) for i in range(self.sources.count())]
        if not paths:
            self.status.setText("Nothing to import: add a folder or files first.")
            return None
        options = ImportOptions(
            data_dir=self.workspace.settings.data_dir,
            copy=self.copy.isChecked(),
            reader=self.workspace.settings.reader,
        )
        db = self.workspace.db
        job = self.run_job(
            "Import",
            lambda progress: import_paths(db, paths, options, progress),
            self._done,
            "Import cancelled; finished files kept.",
        )
        job.finished.connect(lambda: self.imported.emit(self.report))
        return job

    def _done(self, report) -> None:  # noqa: ANN001 - ImportReport
        self.report = report
        self.table.setRowCount(len(report.files))
        for row, result in enumerate(report.files):
            for col, text in enumerate((str(result.path), result.outcome, result.reason)):
                self.table.setItem(row, col, QTableWidgetItem(str(text)))
        self.finish(report.summary())
