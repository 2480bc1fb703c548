"""The worklist dock: search, status filter, the paged table and the empty-worklist offer."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.domain import ImageStatus
from skelex_desktop.ui.models.worklist_model import COLUMNS, WorklistModel

# the first columns fit a 1366-pixel screen's worklist dock: who, where the image stands, the AI
COLUMN_WIDTHS = {"patient_id": 118, "status": 82, "ai_score": 66, "patient_name": 120}


class WorklistTable(QTableView):
    """Enter opens the current row (instead of moving down)."""

    open_requested = Signal(int)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and self.currentIndex().isValid():
            self.open_requested.emit(self.currentIndex().row())
            return
        super().keyPressEvent(event)


class SearchBox(QLineEdit):
    """The worklist search; Escape always hands the focus back (`leave`), never types."""

    leave = Signal()

    def event(self, event: QEvent) -> bool:
        if (
            event.type() == QEvent.Type.ShortcutOverride
            and isinstance(event, QKeyEvent)
            and event.key() == Qt.Key.Key_Escape
        ):
            event.accept()  # Escape is ours here, not the window's "reset window" shortcut
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.leave.emit()
            return
        super().keyPressEvent(event)


class WorklistPanel(QWidget):
    """Emits `open_row` when the reader opens a row (Enter, double-click)."""

    open_row = Signal(int)
    import_requested = Signal()
    demo_requested = Signal()
    informative_requested = Signal()

    def __init__(self, db: Database) -> None:
        super().__init__()
        self.model = WorklistModel(db)
        self.table = WorklistTable()
        self.table.setObjectName("worklistView")
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSortIndicator(
            next(i for i, c in enumerate(COLUMNS) if c[1] == "study_date"),
            Qt.SortOrder.DescendingOrder,
        )
        for i, (_title, attribute, _key) in enumerate(COLUMNS):
            header.resizeSection(i, COLUMN_WIDTHS.get(attribute, 90))
        self.table.verticalHeader().setDefaultSectionSize(52)
        self.table.verticalHeader().hide()
        self.table.doubleClicked.connect(lambda index: self.open_row.emit(index.row()))
        self.table.open_requested.connect(self.open_row.emit)

        self.search = SearchBox()
        self.search.setObjectName("worklistSearch")
        self.search.leave.connect(self.table.setFocus)
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
        self.order = QComboBox()
        self.order.addItem("Newest study first", ("study_date", True))
        self.order.addItem("Highest AI score first", ("ai_score", True))
        self.order.addItem("Patient", ("patient_id", False))
        self.order.addItem("Most informative first (active learning)", ("rank", False))
        self.order.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.order.setMinimumContentsLength(14)
        self.order.currentIndexChanged.connect(self._order_changed)
        self.count_label = QLabel("")
        self.import_button = QPushButton("Import...")
        self.import_button.setObjectName("importButton")
        self.import_button.clicked.connect(self.import_requested.emit)

        self.empty_banner = self._build_empty_banner()
        filters = QHBoxLayout()
        filters.addWidget(self.search, 1)
        filters.addWidget(self.status_filter)
        second = QHBoxLayout()
        second.addWidget(self.order, 1)
        second.addWidget(self.count_label)
        second.addWidget(self.import_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(filters)
        layout.addLayout(second)
        layout.addWidget(self.empty_banner)
        layout.addWidget(self.table, 1)
        self.model.modelReset.connect(self._update_counts)
        self.model.rowsInserted.connect(self._update_counts)

    def _build_empty_banner(self) -> QWidget:
        banner = QWidget()
        banner.setObjectName("emptyBanner")
        banner.setStyleSheet("#emptyBanner { background: #24324a; border-radius: 6px; }")
        text = QLabel(
            "The worklist is empty. Load about 40 synthetic demo studies to try SKELEX "
            "Desktop, or import your own DICOM, DICOMDIR or PNG/TIFF files."
        )
        text.setWordWrap(True)
        text.setStyleSheet("color: white;")
        self.demo_button = QPushButton("Load demo studies")
        self.demo_button.setObjectName("demoButton")
        self.demo_button.clicked.connect(self.demo_requested.emit)
        layout = QVBoxLayout(banner)
        layout.addWidget(text)
        layout.addWidget(self.demo_button)
        return banner

    def _order_changed(self, _index: int) -> None:
        sort, descending = self.order.currentData()
        if sort == "rank":
            self.informative_requested.emit()  # the window computes the ranking off-thread
            return
        self.model.set_query(sort=sort, descending=descending, image_ids=None)

    def show_ranked(self, image_ids: list[int]) -> None:
        """Show only `image_ids`, in that order (the active-learning queue)."""
        self.model.set_query(sort="rank", descending=False, image_ids=image_ids)

    def reset_order(self) -> None:
        self.order.setCurrentIndex(0)

    def _update_counts(self) -> None:
        shown, total = self.model.rowCount(), self.model.total
        self.count_label.setText(f"{total} images" if shown >= total else f"{shown} of {total}")
        filtered = bool(self.search.text()) or self.status_filter.currentData() is not None
        self.empty_banner.setVisible(total == 0 and not filtered)

    def refresh(self, keep_image: int | None = None) -> None:
        """Reload the rows, keeping the selection on `keep_image` when it is still listed."""
        self.model.reload()
        if keep_image is not None:
            self.select_image(keep_image)

    def select_image(self, image_id: int) -> bool:
        row = self.model.row_of(image_id)
        if row is None:
            return False
        self.table.setCurrentIndex(self.model.index(row, 0))
        return True

    def focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def current_row(self) -> int:
        index: QModelIndex = self.table.currentIndex()
        return index.row() if index.isValid() else -1
