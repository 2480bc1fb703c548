"""A small live line chart: named series of (step, value) points, drawn as they arrive."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QWidget

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
MARGIN = 34
LEGEND = 200  # width kept for the series names


class LiveCurves(QWidget):
    """Plots every series on shared axes; the y range covers [0, 1] and all values."""

    def __init__(self, title: str = "") -> None:
        super().__init__()
        self.title = title
        self.series: dict[str, list[tuple[int, float]]] = {}
        self.setMinimumHeight(150)

    def clear(self) -> None:
        self.series.clear()
        self.update()

    def add_point(self, name: str, step: int, value: float) -> None:
        self.series.setdefault(name, []).append((step, value))
        self.update()

    def _ranges(self) -> tuple[float, float, float, float]:
        points = [p for values in self.series.values() for p in values]
        x_max = max((x for x, _ in points), default=1)
        ys = [y for _, y in points]
        return 0.0, float(max(x_max, 1)), min([0.0, *ys]), max([1.0, *ys])

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("white"))
        plot = QRectF(MARGIN, 18, self.width() - MARGIN - LEGEND, self.height() - 18 - MARGIN)
        x0, x1, y0, y1 = self._ranges()

        def at(x: float, y: float) -> QPointF:
            return QPointF(
                plot.left() + (x - x0) / (x1 - x0 or 1) * plot.width(),
                plot.bottom() - (y - y0) / (y1 - y0 or 1) * plot.height(),
            )

        painter.setPen(QPen(QColor("#444"), 1))
        painter.drawRect(plot)
        painter.drawText(int(plot.left()), 13, self.title)
        for value in (y0, (y0 + y1) / 2, y1):
            point = at(x0, value)
            painter.drawText(2, int(point.y()) + 4, f"{value:.2f}")
        for step in range(1, int(x1) + 1):
            point = at(step, y0)
            painter.drawText(int(point.x()) - 3, int(plot.bottom()) + 14, str(step))
        painter.drawText(int(plot.center().x()) - 10, self.height() - 4, "fold")
        for i, (name, values) in enumerate(sorted(self.series.items())):
            color = QColor(PALETTE[i % len(PALETTE)])
            painter.setPen(QPen(color, 2))
            points = [at(x, y) for x, y in sorted(values)]
            for a, b in zip(points, points[1:], strict=False):
                painter.drawLine(a, b)
            for p in points:
                painter.drawEllipse(p, 3, 3)
            painter.drawText(int(plot.right()) + 8, int(plot.top()) + 14 + 16 * i, name)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.end()
