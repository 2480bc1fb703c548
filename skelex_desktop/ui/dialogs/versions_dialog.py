"""Model versions: see every head version with its metrics, activate one (an older one rolls
back); the active heads' predictions are then recomputed in the background."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from skelex_desktop.core.heads.versions import VersionView, list_versions
from skelex_desktop.core.workspace import Workspace
from skelex_desktop.ui.workers import Job, JobRunner

if TYPE_CHECKING:
    from skelex_desktop.core.analysis.pipeline import AnalysisSummary

COLUMNS = ["Model", "Version", "Active", "Created", "Predictions", "Labels", "CV metrics"]


def metrics_summary(view: VersionView) -> str:
    """One line of cross-validated metrics per task (AUROC, or MAE for ordinal tasks)."""
    parts = []
    for task, values in (view.metrics.get("cv") or {}).items():
        shown = [
            f"{k} {float(values[k]):.2f}" for k in ("auroc", "mae") if values.get(k) is not None
        ]
        parts.append(f"{task}: {', '.join(shown)}" if shown else task)
    return "; ".join(parts)


class VersionsDialog(QDialog):
    """`activated` carries the VersionView that became active."""

    activated = Signal(object)

    def __init__(self, workspace: Workspace, runner: JobRunner, parent=None) -> None:  # noqa: ANN001
        super().__init__(parent)
        self.setWindowTitle("Model versions")
        self.resize(900, 420)
        self.workspace = workspace
        self.runner = runner
        self.views: list[VersionView] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(
            len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch
        )
        self.activate_button = QPushButton("Activate selected version")
        self.activate_button.clicked.connect(self.activate_selected)
        self.status = QLabel("Activating an older version rolls back; nothing is deleted.")
        self.status.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.status, 1)
        buttons.addWidget(self.activate_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.reload()

    def reload(self) -> None:
        self.views = list_versions(self.workspace.db)
        self.table.setRowCount(len(self.views))
        for row, view in enumerate(self.views):
            labels = sum(
                int(n)
                for counts in view.label_counts.values()
                if isinstance(counts, dict)
                for n in counts.values()
                if isinstance(n, int | float)
            )
            cells = [
                view.name,
                view.version,
                "yes" if view.active else "",
                view.created_at.strftime("%Y-%m-%d %H:%M"),
                str(view.predictions),
                str(labels) if labels else "",
                metrics_summary(view),
            ]
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))

    def select(self, name: str, version: str) -> None:
        for row, view in enumerate(self.views):
            if (view.name, view.version) == (name, version):
                self.table.selectRow(row)

    def activate_selected(self) -> Job | None:
        from skelex_desktop.core.analysis.pipeline import refresh_predictions
        from skelex_desktop.core.heads.versions import activate_version, head_package

        rows = self.table.selectionModel().selectedRows()
        if not rows:
            self.status.setText("Select a version first.")
            return None
        view = self.views[rows[0].row()]
        ws = self.workspace
        activated = activate_version(ws.db, view.name, view.version, ws.settings.reader)
        self.reload()
        package = head_package(ws.settings, activated.file_sha256)
        self.activated.emit(activated)
        if package is None:
            self.status.setText(f"{activated.name} {activated.version} is now active.")
            return None
        job = Job(
            "Recompute predictions",
            lambda progress: refresh_predictions(ws.db, ws.settings, activated.id, progress),
        )
        job.succeeded.connect(
            lambda summary: self._refreshed(f"{activated.name} {activated.version}", summary)
        )
        job.failed.connect(self.status.setText)
        self.status.setText(f"{activated.name} {activated.version} is now active; recomputing...")
        return self.runner.start(job)

    def _refreshed(self, label: str, summary: AnalysisSummary | None) -> None:
        added = summary.head_predictions + summary.region_predictions if summary else 0
        self.status.setText(f"{label} is now active; {added} predictions recomputed.")
        self.reload()
        self.activated.emit(None)
