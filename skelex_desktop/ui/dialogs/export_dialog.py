"""The export dialog: choose a selection, formats and safeguards; run the export as a job.

The export runs through the `JobRunner` (off the GUI thread) with a progress bar; Cancel stops it
at the next unit of work and the core removes everything it had written.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QDate, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from skelex_desktop.core.export import (
    FORMATS,
    IMAGE_MODES,
    STATUSES,
    ExportError,
    ExportOptions,
    ExportResult,
    Selection,
    export_labelled_set,
)
from skelex_desktop.core.review.schema import list_tasks
from skelex_desktop.core.workspace import Workspace
from skelex_desktop.ui.workers import Job, JobRunner

AUTO_IMAGES = "automatic"
FORMAT_TITLES = {
    "csv": "CSV table",
    "jsonl": "JSON lines",
    "coco": "COCO boxes",
    "yolo": "YOLO boxes",
    "hf": "Hugging Face imagefolder",
    "dicom-sr": "DICOM SR (TID 1500)",
    "dicom-pm": "DICOM Parametric Map (error maps)",
    "dicom-seg": "DICOM SEG (regions)",
}


class ExportDialog(QDialog):
    """Export of labelled sets; `exported` carries the ExportResult when an export succeeds."""

    exported = Signal(object)

    def __init__(
        self, workspace: Workspace, runner: JobRunner, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export labelled set")
        self.workspace = workspace
        self.runner = runner
        self.job: Job | None = None
        self.last_result: ExportResult | None = None
        layout = QVBoxLayout(self)
        layout.addWidget(self._target_box())
        layout.addWidget(self._selection_box())
        layout.addWidget(self._format_box())
        layout.addWidget(self._safety_box())
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.export_button = QPushButton("Export")
        self.cancel_button = QPushButton("Close")
        self.export_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel_or_close)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)

    # -- building --------------------------------------------------------------------------
    def _target_box(self) -> QGroupBox:
        box = QGroupBox("Target folder (new or empty)")
        row = QHBoxLayout(box)
        self.out_edit = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row.addWidget(self.out_edit, 1)
        row.addWidget(browse)
        return box

    def _selection_box(self) -> QGroupBox:
        box = QGroupBox("Selection")
        form = QFormLayout(box)
        self.task_list = QListWidget()
        with self.workspace.db.read() as session:
            for task in list_tasks(session):
                item = QListWidgetItem(f"{task.title} ({task.kind})")
                item.setData(Qt.ItemDataRole.UserRole, task.name)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked)
                self.task_list.addItem(item)
        self.task_list.setMaximumHeight(120)
        form.addRow("Tasks", self.task_list)
        self.status_combo = QComboBox()
        self.status_combo.addItems(list(STATUSES))
        self.status_combo.setCurrentText(Selection().status)
        self.status_combo.setToolTip("Image workflow status; 'any' exports every labelled image")
        form.addRow("Image status", self.status_combo)
        self.reader_edit = QLineEdit()
        self.reader_edit.setPlaceholderText("every reader")
        form.addRow("Reader", self.reader_edit)
        dates = QHBoxLayout()
        self.date_check = QCheckBox("Study date from")
        self.date_from = QDateEdit(QDate.currentDate().addYears(-1))
        self.date_to = QDateEdit(QDate.currentDate())
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
        dates.addWidget(self.date_check)
        dates.addWidget(self.date_from)
        dates.addWidget(QLabel("to"))
        dates.addWidget(self.date_to)
        form.addRow("Dates", dates)
        self.model_edit = QLineEdit()
        self.model_edit.setPlaceholderText("any model (name, version or name:version)")
        form.addRow("Model version", self.model_edit)
        split = QHBoxLayout()
        self.split_spins = []
        for name, value in (("train", 0.7), ("val", 0.15), ("test", 0.15)):
            spin = QDoubleSpinBox()
            spin.setRange(0.0, 1.0)
            spin.setSingleStep(0.05)
            spin.setValue(value)
            split.addWidget(QLabel(name))
            split.addWidget(spin)
            self.split_spins.append(spin)
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        split.addWidget(QLabel("seed"))
        split.addWidget(self.seed_spin)
        form.addRow("Patient split", split)
        return box

    def _format_box(self) -> QGroupBox:
        box = QGroupBox("Formats")
        grid = QGridLayout(box)
        self.format_checks: dict[str, QCheckBox] = {}
        for i, name in enumerate(FORMATS):
            check = QCheckBox(FORMAT_TITLES[name])
            check.setChecked(name == "csv")
            grid.addWidget(check, i // 2, i % 2)
            self.format_checks[name] = check
        self.images_combo = QComboBox()
        self.images_combo.addItems([AUTO_IMAGES, *IMAGE_MODES])
        grid.addWidget(QLabel("Images"), len(FORMATS) // 2 + 1, 0)
        grid.addWidget(self.images_combo, len(FORMATS) // 2 + 1, 1)
        return box

    def _safety_box(self) -> QGroupBox:
        box = QGroupBox("Privacy")
        column = QVBoxLayout(box)
        self.deid_check = QCheckBox("De-identify (DICOM Basic Profile, pseudonyms, verified)")
        self.deid_check.setChecked(True)
        self.burned_check = QCheckBox(
            "Include images flagged with burned-in annotation (their pixels may show identities)"
        )
        column.addWidget(self.deid_check)
        column.addWidget(self.burned_check)
        return box

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder to export into")
        if folder:
            self.out_edit.setText(str(Path(folder) / "skelex-export"))

    # -- running ---------------------------------------------------------------------------
    def options(self) -> ExportOptions:
        """The options shown in the dialog; ExportError says what is missing or wrong."""
        out = self.out_edit.text().strip()
        if not out:
            raise ExportError("choose a target folder")
        tasks = tuple(
            self.task_list.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.task_list.count())
            if self.task_list.item(i).checkState() == Qt.CheckState.Checked
        )
        if not tasks:
            raise ExportError("choose at least one task")
        dated = self.date_check.isChecked()
        images = self.images_combo.currentText()
        fractions = [s.value() for s in self.split_spins]
        total = sum(fractions) or 1.0
        options = ExportOptions(
            out=Path(out).expanduser(),
            formats=tuple(n for n, c in self.format_checks.items() if c.isChecked()),
            selection=Selection(
                tasks=tasks,
                status=self.status_combo.currentText(),
                reader=self.reader_edit.text().strip() or None,
                date_from=self.date_from.date().toPython() if dated else None,
                date_to=self.date_to.date().toPython() if dated else None,
                model_version=self.model_edit.text().strip() or None,
            ),
            deidentify=self.deid_check.isChecked(),
            split=(fractions[0] / total, fractions[1] / total, fractions[2] / total),
            seed=self.seed_spin.value(),
            images=None if images == AUTO_IMAGES else images,
            include_burned_in=self.burned_check.isChecked(),
        )
        options.validate()
        return options

    def start(self) -> Job | None:
        """Start the export job (or show why it cannot start)."""
        try:
            options = self.options()
        except ExportError as exc:
            self.message.setText(str(exc))
            return None
        db, data_dir = self.workspace.db, self.workspace.settings.data_dir
        job = Job("Export", lambda progress: export_labelled_set(db, options, progress, data_dir))
        job.progressed.connect(self._on_progress)
        job.succeeded.connect(self._on_success)
        job.failed.connect(self._on_failure)
        job.cancelled.connect(self._on_cancelled)
        job.finished.connect(self._on_finished)
        self.job = job
        self.last_result = None
        self.export_button.setEnabled(False)
        self.cancel_button.setText("Cancel")
        self.message.setText("exporting…")
        self.progress.setRange(0, 0)
        self.runner.start(job)
        return job

    def cancel_or_close(self) -> None:
        if self.job is not None:
            self.message.setText("cancelling…")
            self.job.cancel()
        else:
            self.reject()

    def _on_progress(self, done: int, total: int, text: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(done, max(total, 1)))
        if text:
            self.message.setText(text)

    def _on_success(self, result: ExportResult) -> None:
        self.last_result = result
        lines = [result.summary()] + [f"Warning: {w}" for w in result.warnings]
        lines += [f"Note: {n}" for n in result.notes]
        self.message.setText("\n".join(lines))
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        self.exported.emit(result)

    def _on_failure(self, text: str) -> None:
        self.message.setText(text)

    def _on_cancelled(self) -> None:
        self.message.setText("Export cancelled; nothing was written.")

    def _on_finished(self) -> None:
        self.job = None
        self.export_button.setEnabled(True)
        self.cancel_button.setText("Close")
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)
