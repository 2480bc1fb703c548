"""The findings dock: overlay controls, hotspots, and one row per task with the AI suggestion.

It shows state and turns reader gestures into signals; the main window hands them to the review
session. Task rows sit in a scroll area and their texts wrap, so a long suggestion never
overlaps the next row on a small screen.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from skelex_desktop.core.review.decisions import MIN_CONFIRM_AUROC, TaskState
from skelex_desktop.ui.viewer.rendering import COLORMAPS

NO_DECISION = "-"


def describe_suggestion(state: TaskState) -> str:
    """The AI line of a task row, plain about what exists."""
    if not state.has_suggestion:
        return "no AI suggestion yet (no trained head)"
    value = state.suggestion
    if state.kind == "binary":
        value = state.classes[int(value)]
    source = f"AI ({state.method})" if state.method else "AI"
    if state.cv_auroc is not None:
        source += f", CV AUROC {state.cv_auroc:.2f}"
    elif state.calibration_auroc is not None:
        source += f", calibration AUROC {state.calibration_auroc:.2f}"
    if state.driver:
        source += f", from {state.driver.get('label', 'a region')}"
    if state.threshold is not None and state.score is not None:
        relation = ">" if state.score > state.threshold else "<="
        text = f"{source}: {value}, score {state.score:.3g} {relation} {state.threshold:.3g}"
    else:
        text = f"{source}: {value}"
        if state.probability is not None:
            text += f" (p = {state.probability:.2f})"
    if not state.confirmable:
        what = "head" if state.cv_auroc is not None else "map"
        text += f" - weak {what}, not accepted by Enter (AUROC < {MIN_CONFIRM_AUROC:.2f})"
    return text


def describe_decision(state: TaskState) -> str:
    if state.uncertain:
        return f"uncertain ({state.reader})"
    if state.label_id is None:
        return ""
    value = state.value
    if state.kind == "binary" and value is not None:
        value = state.classes[int(value)]
    return f"{value} ({state.reader})"


class TaskRow(QWidget):
    """Title, AI suggestion, selector of the reader's answer."""

    def __init__(self, state: TaskState, on_choice) -> None:  # noqa: ANN001 - a callable
        super().__init__()
        self.state = state
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)  # the highlight shows
        self.title = QLabel(f"<b>{state.title}</b>" + (" *" if state.required else ""))
        if state.required:
            self.title.setToolTip("Required: Enter confirms the image only once this is decided")
        self.ai = QLabel(describe_suggestion(state))
        self.ai.setStyleSheet("color: #5fb3ff;" if state.confirmable else "color: #888;")
        self.ai.setWordWrap(True)
        self.ai.setToolTip(self.ai.text())
        self.ai.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.MinimumExpanding)
        self.decision = QLabel(describe_decision(state))
        self.selector = QComboBox()
        self.selector.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.selector.setMinimumContentsLength(12)
        self.selector.addItem(NO_DECISION, None)
        for i, name in enumerate(state.classes):
            self.selector.addItem(f"{i}: {name}", i)
        current = self._current_index()
        self.selector.setCurrentIndex(current)
        self.selector.activated.connect(
            lambda i: (
                on_choice(state.name, self.selector.itemData(i))
                if self.selector.itemData(i) is not None
                else None
            )
        )
        top = QHBoxLayout()
        top.addWidget(self.title)
        top.addStretch(1)
        top.addWidget(self.decision)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 3, 6, 3)
        layout.addLayout(top)
        layout.addWidget(self.ai)
        layout.addWidget(self.selector)

    def _current_index(self) -> int:
        value = self.state.value
        if self.state.label_id is None or value is None:
            return 0
        if self.state.kind == "binary":
            return int(value) + 1
        classes = self.state.classes
        return classes.index(str(value)) + 1 if str(value) in classes else 0

    def set_current(self, current: bool) -> None:
        self.setStyleSheet("TaskRow { background: #2d3f5c; }" if current else "")
        self.setAutoFillBackground(current)


class FindingsPanel(QWidget):
    """Overlay controls, hotspot list and task rows."""

    overlay_toggled = Signal(bool)
    overlay_style_changed = Signal()
    hotspot_clicked = Signal(int)
    choice_made = Signal(str, int)  # task name, class index
    confirm_clicked = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("labelPanel")
        self.rows: list[TaskRow] = []
        self.current_task = 0

        overlay_box = QGroupBox("Error map")
        self.overlay_toggle = QCheckBox("Show overlay (E)")
        self.overlay_toggle.setObjectName("overlayToggle")
        self.overlay_toggle.setChecked(True)
        self.overlay_toggle.toggled.connect(self.overlay_toggled.emit)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setObjectName("opacitySlider")
        self.opacity.setRange(0, 100)
        self.opacity.setValue(55)
        self.threshold = QSlider(Qt.Orientation.Horizontal)
        self.threshold.setObjectName("thresholdSlider")
        self.threshold.setRange(0, 100)
        self.threshold.setValue(0)
        self.colormap = QComboBox()
        self.colormap.setObjectName("colormapCombo")
        self.colormap.addItems(list(COLORMAPS))
        for widget in (self.opacity, self.threshold):
            widget.valueChanged.connect(lambda _v: self.overlay_style_changed.emit())
        self.colormap.currentIndexChanged.connect(lambda _i: self.overlay_style_changed.emit())
        self.analysis_status = QLabel("")
        self.analysis_status.setWordWrap(True)
        form = QFormLayout(overlay_box)
        form.addRow(self.overlay_toggle)
        form.addRow("Opacity", self.opacity)
        form.addRow("Threshold", self.threshold)
        form.addRow("Colours", self.colormap)
        form.addRow(self.analysis_status)

        hotspot_box = QGroupBox("Hotspots (click to zoom)")
        self.hotspots = QListWidget()
        self.hotspots.setObjectName("hotspotList")
        self.hotspots.itemClicked.connect(
            lambda item: self.hotspot_clicked.emit(item.data(Qt.ItemDataRole.UserRole))
        )
        QVBoxLayout(hotspot_box).addWidget(self.hotspots)

        self.tasks_box = QGroupBox("Labels (digits choose, U uncertain, T next task)")
        rows = QWidget()
        self.tasks_layout = QVBoxLayout(rows)
        self.tasks_layout.setSpacing(2)
        self.tasks_layout.setContentsMargins(0, 0, 0, 0)
        self.tasks_layout.addStretch(1)
        self.tasks_scroll = QScrollArea()
        self.tasks_scroll.setObjectName("taskScroll")
        self.tasks_scroll.setWidgetResizable(True)
        self.tasks_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.tasks_scroll.setWidget(rows)
        box_layout = QVBoxLayout(self.tasks_box)
        box_layout.setContentsMargins(2, 2, 2, 2)
        box_layout.addWidget(self.tasks_scroll)
        self.confirm_button = QPushButton("Confirm shown suggestions (Enter)")
        self.confirm_button.setObjectName("confirmButton")
        self.confirm_button.clicked.connect(self.confirm_clicked.emit)

        layout = QVBoxLayout(self)
        layout.addWidget(overlay_box)
        layout.addWidget(hotspot_box, 1)
        measure_box = QGroupBox("Measurements (L length, A angle)")
        self.measurements = QListWidget()
        self.measurements.setObjectName("measurementList")
        self.measurements.setMaximumHeight(72)
        QVBoxLayout(measure_box).addWidget(self.measurements)
        layout.addWidget(measure_box)
        layout.addWidget(self.tasks_box, 3)
        layout.addWidget(self.confirm_button)

    # --- tasks ---------------------------------------------------------------------------------
    def set_tasks(self, states: list[TaskState], current: int = 0) -> None:
        """Show `states`, the task at index `current` highlighted (the session's cursor)."""
        for row in self.rows:
            self.tasks_layout.removeWidget(row)
            row.hide()  # gone now, not when the event loop gets to the deletion
            row.deleteLater()
        self.rows = [TaskRow(state, self._choice) for state in states]
        for i, row in enumerate(self.rows):
            self.tasks_layout.insertWidget(i, row)
        self.set_current_task(current)

    def _choice(self, task: str, index: int) -> None:
        self.choice_made.emit(task, index)

    def task_state(self, name: str) -> TaskState | None:
        return next((r.state for r in self.rows if r.state.name == name), None)

    def current_state(self) -> TaskState | None:
        return self.rows[self.current_task].state if self.rows else None

    def set_current_task(self, index: int) -> None:
        self.current_task = min(max(index, 0), max(len(self.rows) - 1, 0))
        for i, row in enumerate(self.rows):
            row.set_current(i == self.current_task)
        if self.rows:
            self.tasks_scroll.ensureWidgetVisible(self.rows[self.current_task])

    def set_measurements(self, labels: list[str]) -> None:
        self.measurements.clear()
        self.measurements.addItems(labels)

    # --- overlay and hotspots ------------------------------------------------------------------
    def overlay_style(self) -> dict[str, Any]:
        return {
            "colormap": self.colormap.currentText(),
            "opacity": self.opacity.value() / 100.0,
            "threshold": self.threshold.value() / 100.0,
        }

    def set_hotspots(self, hotspots: list[tuple[tuple[float, float, float, float], float]]) -> None:
        self.hotspots.clear()
        for i, ((x0, y0, x1, y1), score) in enumerate(hotspots):
            item = QListWidgetItem(
                f"#{i + 1}  score {score:.2f}  at x {x0:.0f}-{x1:.0f}, y {y0:.0f}-{y1:.0f}"
            )
            item.setData(Qt.ItemDataRole.UserRole, i)
            self.hotspots.addItem(item)
