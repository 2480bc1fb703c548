"""Table model over the core worklist query, fetched page by page as the view scrolls."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QPixmap

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.review.worklist import WorklistQuery, WorklistRow, query_worklist

Index = QModelIndex | QPersistentModelIndex

# (header, WorklistRow attribute, sort key understood by the core query)
# Status and AI score come early: they stay in view in the dock of a 1366x768 screen.
COLUMNS: list[tuple[str, str, str]] = [
    ("Patient", "patient_id", "patient_id"),
    ("Status", "status", "status"),
    ("AI score", "ai_score", "ai_score"),
    ("Name", "patient_name", "patient_name"),
    ("Study date", "study_date", "study_date"),
    ("Body part", "body_part", "body_part"),
    ("View", "view", "view"),
    ("Lat.", "laterality", "laterality"),
    ("Images", "images_in_study", "images_in_study"),
    ("Reader", "reader", "reader"),
]
PAGE = 200
THUMB_PX = 48


class WorklistModel(QAbstractTableModel):
    """Rows of the worklist for the current query; sorting and filtering re-query the core."""

    def __init__(self, db: Database, page_size: int = PAGE) -> None:
        super().__init__()
        self._db = db
        self._page = page_size
        self._query = WorklistQuery(limit=page_size)
        self._rows: list[WorklistRow] = []
        self.total = 0
        self._thumbs: dict[str, QPixmap] = {}

    # --- query -----------------------------------------------------------------------------
    def set_query(self, **changes: Any) -> None:
        """Change filters/sort and reload from the first page."""
        self._query = replace(self._query, offset=0, limit=self._page, **changes)
        self.reload()

    def reload(self) -> None:
        with self._db.read() as session:
            page = query_worklist(session, replace(self._query, offset=0, limit=self._page))
        self.beginResetModel()
        self._rows = list(page.rows)
        self.total = page.total
        self.endResetModel()

    def canFetchMore(self, parent: Index = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and len(self._rows) < self.total

    def fetchMore(self, parent: Index = QModelIndex()) -> None:  # noqa: B008
        with self._db.read() as session:
            page = query_worklist(
                session, replace(self._query, offset=len(self._rows), limit=self._page)
            )
        if not page.rows:
            return
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(page.rows) - 1)
        self._rows.extend(page.rows)
        self.endInsertRows()

    def row_at(self, row: int) -> WorklistRow | None:
        """The row at `row`, fetching further pages when it is beyond the loaded ones."""
        while row >= len(self._rows) and self.canFetchMore():
            self.fetchMore()
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def update_image(self, image_id: int) -> None:
        """Re-read one loaded row (status, AI score, reader) after a change."""
        row = self.row_of(image_id)
        if row is None:
            return
        with self._db.read() as session:
            page = query_worklist(session, WorklistQuery(image_ids=[image_id], limit=1))
        if page.rows:
            self._rows[row] = page.rows[0]
            self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def row_of(self, image_id: int) -> int | None:
        for i, row in enumerate(self._rows):
            if row.image_id == image_id:
                return i
        return None

    # --- Qt model interface ----------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][0]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self._rows[index.row()]
        attr = COLUMNS[index.column()][1]
        if role == Qt.ItemDataRole.DisplayRole:
            value = getattr(row, attr)
            if value is None:
                return ""
            if attr == "ai_score":
                return f"{value:.3f}"
            if attr == "status":
                return str(value).replace("_", " ")
            return str(value)
        if role == Qt.ItemDataRole.DecorationRole and index.column() == 0:
            return self._thumbnail(row.thumbnail_path)
        if role == Qt.ItemDataRole.UserRole:
            return row.image_id
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.set_query(sort=COLUMNS[column][2], descending=order == Qt.SortOrder.DescendingOrder)

    def _thumbnail(self, path: str) -> QPixmap | None:
        if not path:
            return None
        if path not in self._thumbs:
            pixmap = QPixmap(path)
            self._thumbs[path] = (
                pixmap.scaled(
                    THUMB_PX,
                    THUMB_PX,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
                if not pixmap.isNull()
                else pixmap
            )
        return self._thumbs[path]
