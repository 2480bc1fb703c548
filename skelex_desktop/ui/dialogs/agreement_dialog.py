"""Reader agreement: per task, Cohen's kappa per reader pair and Fleiss' kappa with bootstrap
intervals, computed in the background."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.progress import BaseProgress
from skelex_desktop.core.team.agreement import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    AgreementReport,
    Estimate,
    TaskAgreement,
    agreement_report,
)
from skelex_desktop.ui.workers import Job, JobRunner

UNRATED = ("regression", "region")  # kinds listed with the reason they are skipped
COLUMNS = ["Task", "Readers", "Units", "Agree", "Kappa", "95% CI", "Weighted", "95% CI", "Note"]


def _kappa(estimate: Estimate | None) -> tuple[str, str]:
    if estimate is None:
        return "", ""
    if not estimate.defined:
        return "n/a", ""
    return f"{estimate.value:.3f}", f"{estimate.low:.3f} to {estimate.high:.3f}"


def _note(*estimates: Estimate | None) -> str:
    return "; ".join(e.reason for e in estimates if e is not None and e.reason)


def table_rows(task: TaskAgreement) -> list[list[str]]:
    """The dialog's rows of one task: a row per reader pair, then Fleiss over all readers; a
    skipped task is one row with the reason."""
    if not task.pairs:
        return [[task.task, "", "", "", "", "", "", "", task.skipped]]
    rows = []
    for pair in task.pairs:
        kappa, weighted = pair.kappa, pair.weighted
        agree = f"{kappa.agreement:.0%}" if kappa.n else ""
        rows.append(
            [task.task, f"{pair.reader_a} / {pair.reader_b}", str(kappa.n), agree]
            + [*_kappa(kappa), *_kappa(weighted), _note(kappa, weighted)]
        )
    fleiss = task.fleiss
    if fleiss is not None:
        notes = [_note(fleiss)]
        if task.fewer_reads:
            notes.append(f"{task.fewer_reads} {task.unit}s not read by all, left out")
        uncertain = sum(r.uncertain for r in task.readers)
        if uncertain:
            notes.append(f"{uncertain} uncertain decisions left out")
        agree = f"{fleiss.agreement:.0%}" if fleiss.n else ""
        rows.append(
            [task.task, f"Fleiss, all {len(task.raters)}", str(fleiss.n), agree]
            + [*_kappa(fleiss), "", "", "; ".join(n for n in notes if n)]
        )
    return rows


class AgreementDialog(QDialog):
    """The agreement report as a table; the bootstrap runs as a background job."""

    computed = Signal(object)  # the AgreementReport, once shown

    def __init__(
        self,
        db: Database,
        runner: JobRunner,
        parent: QWidget | None = None,
        *,
        resamples: int = DEFAULT_RESAMPLES,
        seed: int = DEFAULT_SEED,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Reader agreement")
        self.report: AgreementReport | None = None
        self.status = QLabel(f"Computing agreement ({resamples} bootstrap resamples)...")
        self.status.setWordWrap(True)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("agreementTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.footer = QLabel("")
        self.footer.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.footer)
        layout.addWidget(buttons)
        area = self.screen().availableGeometry()
        self.resize(min(1000, area.width() - 40), min(560, area.height() - 60))

        def compute(progress: BaseProgress) -> AgreementReport:
            with db.read() as session:
                return agreement_report(session, resamples=resamples, seed=seed, progress=progress)

        self.job = Job("Reader agreement", compute)
        self.job.progressed.connect(self._progressed)
        self.job.succeeded.connect(self.show_report)
        self.job.failed.connect(self._failed)
        runner.start(self.job)

    def _progressed(self, done: int, total: int, text: str) -> None:
        if self.report is None and total:
            self.status.setText(f"Computing agreement: {done} of {total} tasks ({text})")

    def _failed(self, message: str) -> None:
        self.status.setText(message)

    def show_report(self, report: AgreementReport) -> None:
        self.report = report
        listed = [t for t in report.tasks if t.pairs or t.readers or t.kind in UNRATED]
        empty = [t.task for t in report.tasks if t not in listed]
        rows = [row for task in listed for row in table_rows(task)]
        self.table.setRowCount(len(rows))
        for r, values in enumerate(rows):
            for c, value in enumerate(values):
                item = QTableWidgetItem(value)
                if 1 < c < 8:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(r, c, item)
        scope = "all images" if report.images is None else f"{report.images} images"
        self.status.setText(
            f"Agreement of the readers' current decisions over {scope}. Weighted: "
            "quadratic-weighted kappa of ordinal tasks. Units: images (studies for "
            "study-wide tasks) both readers decided."
            if any(t.pairs for t in listed)
            else "No task has decisions from two readers yet: agreement needs at least two "
            "readers deciding the same images."
        )
        footer = (
            f"95% intervals: bootstrap percentiles, {report.resamples} resamples of the images, "
            f"seed {report.seed} (`skelex-desktop team agreement` gives the same numbers). "
            "Uncertain decisions are left out; Fleiss uses the images every reader decided."
        )
        if empty:
            footer += f" No decisions yet: {', '.join(empty)}."
        self.footer.setText(footer)
        self.computed.emit(report)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.job.cancel()
        super().closeEvent(event)
