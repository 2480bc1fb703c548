"""What the AI changed: the influence report as a table and a stacked bar per row."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent
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
from skelex_desktop.core.review.influence import InfluenceReport, InfluenceRow, influence_report

COLUMNS = [
    "Reader",
    "Task",
    "Model",
    "Shown",
    "Accepted",
    "Overrode",
    "Uncertain",
    "No AI",
    "Agree",
]
# accepted, overridden, uncertain, no suggestion (colour-blind-friendly, Okabe-Ito)
PARTS = [
    ("accepted", QColor(0, 158, 115)),
    ("overridden", QColor(213, 94, 0)),
    ("uncertain", QColor(230, 159, 0)),
    ("no_suggestion", QColor(153, 153, 153)),
]


class InfluenceBars(QWidget):
    """One stacked horizontal bar per report row: the shares of its decisions."""

    def __init__(self, rows: list[InfluenceRow]) -> None:
        super().__init__()
        self.rows = rows
        self.setMinimumHeight(24 + 18 * len(rows))

    def sizeHint(self) -> QSize:
        return QSize(480, 24 + 18 * len(self.rows))

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        label_width = min(220, self.width() // 3)
        for i, row in enumerate(self.rows):
            y = 4 + 18 * i
            painter.setPen(self.palette().text().color())
            painter.drawText(
                QRectF(0, y, label_width - 6, 16),
                int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter),
                f"{row.reader} / {row.task}",
            )
            width = self.width() - label_width - 8
            x = float(label_width)
            for attribute, colour in PARTS:
                share = getattr(row, attribute) / row.decisions if row.decisions else 0.0
                painter.fillRect(QRectF(x, y, width * share, 14), colour)
                x += width * share
        y = 6 + 18 * len(self.rows)
        x = float(label_width)
        for attribute, colour in PARTS:
            painter.fillRect(QRectF(x, y, 10, 10), colour)
            painter.setPen(self.palette().text().color())
            text = attribute.replace("_", " ")
            painter.drawText(QRectF(x + 14, y - 3, 110, 16), text)
            x += 24 + 7 * len(text)
        painter.end()


class InfluenceDialog(QDialog):
    """Per reader, task and model version: suggestions shown, accepted, overridden; seconds per
    image; agreement with the AI."""

    def __init__(self, db: Database, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("What the AI changed")
        with db.read() as session:
            self.report: InfluenceReport = influence_report(session)
        self.table = QTableWidget(len(self.report.rows), len(COLUMNS))
        self.table.setObjectName("influenceTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        for r, row in enumerate(self.report.rows):
            agree = "" if row.agreement is None else f"{row.agreement:.0%}"
            values = [row.reader, row.task, row.model, row.shown, row.accepted]
            values += [row.overridden, row.uncertain, row.no_suggestion, agree]
            for c, value in enumerate(values):
                self.table.setItem(r, c, QTableWidgetItem(str(value)))
        times = "; ".join(
            f"{reader}: {'-' if s is None else f'{s:.1f} s'}"
            for reader, s in self.report.seconds_per_image.items()
        )
        self.summary = QLabel(
            f"Median time per confirmed image: {times}"
            if times
            else "No confirmed image yet."
            if self.report.rows
            else "No decisions yet: the report fills as readers decide."
        )
        self.summary.setWordWrap(True)
        self.bars = InfluenceBars(self.report.rows)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 2)
        layout.addWidget(self.bars, 1)
        layout.addWidget(self.summary)
        layout.addWidget(buttons)
        area = self.screen().availableGeometry()
        self.resize(min(900, area.width() - 40), min(620, area.height() - 60))
