"""Training dialog: choose tasks, train a head in the background (child process), see its
cross-validated metrics, cancel at any time."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from skelex_desktop.core.progress import Progress
from skelex_desktop.core.review.schema import list_tasks
from skelex_desktop.core.workspace import Workspace
from skelex_desktop.ui.dialogs.job_dialog import JobDialog
from skelex_desktop.ui.panels.live_curves import LiveCurves
from skelex_desktop.ui.workers import Job, JobRunner

TRAINABLE = {"binary", "multiclass", "ordinal"}
METRICS = [
    ("auroc", "AUROC"),
    ("balanced_accuracy", "Balanced acc."),
    ("f1_macro", "F1 (macro)"),
    ("mae", "MAE"),
    ("ece", "ECE"),
    ("ece_calibrated", "ECE calibrated"),
]


class TrainingDialog(JobDialog):
    """`trained` carries the TrainResult of a successful training."""

    trained = Signal(object)

    def __init__(self, workspace: Workspace, runner: JobRunner, parent=None) -> None:  # noqa: ANN001
        super().__init__(
            runner,
            "Train",
            "Cancel training",
            "Tick one task (or several for a multi-head model). Only confirmed human labels of "
            "analysed images count; uncertain labels are left out.",
            parent,
        )
        self.setWindowTitle("Train task heads")
        self.resize(640, 520)
        self.workspace = workspace
        self.result = None
        self.tasks = QListWidget()
        with workspace.db.read() as session:
            for task in list_tasks(session):
                if task.kind in TRAINABLE:
                    item = QListWidgetItem(f"{task.title} ({task.kind})")
                    item.setData(Qt.ItemDataRole.UserRole, task.name)
                    item.setCheckState(Qt.CheckState.Unchecked)
                    self.tasks.addItem(item)
        self.folds = QSpinBox()
        self.folds.setRange(2, 10)
        self.folds.setValue(5)
        self.seed = QSpinBox()
        self.seed.setRange(0, 1_000_000)
        form = QFormLayout()
        form.addRow("Cross-validation folds (patient-grouped)", self.folds)
        form.addRow("Seed", self.seed)
        self.metrics = QTableWidget(0, len(METRICS) + 1)
        self.metrics.setHorizontalHeaderLabels(["Task", *[title for _k, title in METRICS]])
        self.metrics.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.start_button.setObjectName("startTrainingButton")
        self.start_button.clicked.connect(self.start)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Tasks"))
        layout.addWidget(self.tasks, 1)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self.curves = LiveCurves("Per-fold metrics, live")
        layout.addWidget(self.curves)
        layout.addWidget(QLabel("Cross-validated metrics (out-of-fold)"))
        layout.addWidget(self.metrics, 1)
        self.plots = QHBoxLayout()
        layout.addLayout(self.plots)
        self.plot_labels: list[QLabel] = []

    def set_checked(self, names: list[str]) -> None:
        for i in range(self.tasks.count()):
            item = self.tasks.item(i)
            wanted = item.data(Qt.ItemDataRole.UserRole) in names
            item.setCheckState(Qt.CheckState.Checked if wanted else Qt.CheckState.Unchecked)

    def checked(self) -> list[str]:
        return [
            self.tasks.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.tasks.count())
            if self.tasks.item(i).checkState() == Qt.CheckState.Checked
        ]

    def start(self) -> Job | None:
        from skelex_desktop.core.analysis.pipeline import refresh_predictions
        from skelex_desktop.core.heads.training_job import TrainResult, train_head

        names = self.checked()
        if not names:
            self.status.setText("Tick at least one task to train.")
            return None
        db, settings = self.workspace.db, self.workspace.settings
        folds, seed = self.folds.value(), self.seed.value()
        self.metrics.setRowCount(0)
        self.curves.clear()

        def train(progress: Progress) -> TrainResult:
            """Train, then run the pipeline so the new head's region-guided predictions exist
            for the analysed images too (not cancellable: the head is stored by then, and
            a cancel promises that nothing was)."""
            result = train_head(db, settings, names, folds, seed, progress=progress)
            progress.set_status("region-guided predictions of the new head")
            refresh_predictions(db, settings, result.model_version_id)
            return result

        return self.run_job(
            "Training",
            train,
            self._done,
            "Training cancelled; nothing was stored.",
            on_point=self.curves.add_point,
        )

    def _done(self, result) -> None:  # noqa: ANN001 - TrainResult
        self.result = result
        cv = result.metrics.get("cv", {})
        self.metrics.setRowCount(len(cv))
        for row, (task, values) in enumerate(cv.items()):
            self.metrics.setItem(row, 0, QTableWidgetItem(task))
            for col, (key, _title) in enumerate(METRICS, start=1):
                value = values.get(key)
                text = "" if value is None else f"{float(value):.3f}"
                self.metrics.setItem(row, col, QTableWidgetItem(text))
        self._show_plots([Path(p) for p in getattr(result, "plots", [])])
        self.finish(
            f"Trained {result.name} version {result.version} (now active); "
            f"{result.predictions} predictions stored."
        )
        self.trained.emit(result)

    def _show_plots(self, paths: list[Path]) -> None:
        """ROC and calibration plots of the training (saved beside the head's weights)."""
        for label in self.plot_labels:
            self.plots.removeWidget(label)
            label.deleteLater()
        self.plot_labels = []
        for path in paths[:4]:
            label = QLabel()
            label.setToolTip(str(path))
            pixmap = QPixmap(str(path))
            if pixmap.isNull():
                label.setText(f"cannot show {path.name}")
            else:
                label.setPixmap(
                    pixmap.scaledToWidth(300, Qt.TransformationMode.SmoothTransformation)
                )
            self.plots.addWidget(label)
            self.plot_labels.append(label)
        if self.plot_labels:
            self.resize(max(self.width(), 320 * len(self.plot_labels)), self.height() + 240)
