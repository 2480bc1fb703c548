"""The study view: the open image's viewer with the other views of its study (or the prior)
beside it, 1x1, 1x2 or 2x2 by count. Companions are display-only; a click opens one. Linked,
they follow the open image's window/level and zoom."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from skelex_desktop.core.review.studies import Companion
from skelex_desktop.ui.viewer.canvas import RadiographView

MOST = 3  # companions beside the open image: a 2x2 grid at the most


class CompanionView(RadiographView):
    """A display-only viewer of another image; a left click asks to open it."""

    clicked = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self.image_id = 0
        self.setObjectName("companionView")
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.notice.hide()  # calibration matters where one measures: the open image's viewer

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.image_id:
            self.clicked.emit(self.image_id)
            return
        super().mousePressEvent(event)


class StudyGrid(QWidget):
    """Lays out `main` and up to `MOST` companions; `open_requested` carries a clicked image."""

    open_requested = Signal(int)

    def __init__(self, main: RadiographView) -> None:
        super().__init__()
        self.main = main
        self.views: list[CompanionView] = []
        self.captions: list[QLabel] = []
        self.cells: list[QWidget] = []
        self.companions: list[Companion] = []
        self.linked = False
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(2)
        self.grid.addWidget(main, 0, 0)
        main.window_changed.connect(self._follow_window)
        main.zoom_changed.connect(self._follow_zoom)
        for _ in range(MOST):
            view, caption = CompanionView(), QLabel()
            view.clicked.connect(self.open_requested.emit)
            caption.setStyleSheet("color: #ffd75e; font-weight: bold;")
            cell = QWidget()
            layout = QVBoxLayout(cell)
            layout.setContentsMargins(0, 0, 0, 0)
            layout.setSpacing(0)
            layout.addWidget(caption)
            layout.addWidget(view, 1)
            cell.hide()
            self.views.append(view)
            self.captions.append(caption)
            self.cells.append(cell)

    def show_companions(self, companions: list[Companion]) -> None:
        """Place the open image and its companions (1x1, 1x2 or 2x2)."""
        self.companions = companions[:MOST]
        for cell in self.cells:
            self.grid.removeWidget(cell)
            cell.hide()
        count = len(self.companions)
        positions = [(0, 1)] if count == 1 else [(0, 1), (1, 0), (1, 1)]
        for i, (companion, position) in enumerate(zip(self.companions, positions, strict=False)):
            self.views[i].image_id = companion.image.image_id
            self.views[i].clear_frame()
            self.captions[i].setText(companion.caption)
            self.grid.addWidget(self.cells[i], *position)
            self.cells[i].show()
        for stretch in range(2):
            self.grid.setRowStretch(stretch, 1 if stretch == 0 or count > 1 else 0)
            self.grid.setColumnStretch(stretch, 1 if stretch == 0 or count > 0 else 0)

    def set_frame(self, image_id: int, frame: Any) -> bool:
        """Show `frame` in the companion of `image_id`; False when none shows that image."""
        for companion, view in zip(self.companions, self.views, strict=False):
            if companion.image.image_id == image_id:
                view.set_frame(frame, companion.image.laterality, companion.image.view)
                if self.linked and self.main.frame is not None:
                    view.set_window(*self.main.window)
                return True
        return False

    def set_linked(self, linked: bool) -> None:
        """Companions follow the open image's window/level and zoom when linked."""
        self.linked = linked
        if linked and self.main.frame is not None:
            self._follow_window(*self.main.window)
            self._follow_zoom(self.main.zoom, self.main.fit_mode)

    def _follow_zoom(self, zoom: float, fit: bool) -> None:
        if not self.linked:
            return
        for view in self.views[: len(self.companions)]:
            if view.frame is not None:
                view.fit() if fit else view.set_zoom(zoom)

    def _follow_window(self, center: float, width: float) -> None:
        if not self.linked:
            return
        for view in self.views[: len(self.companions)]:
            if view.frame is not None:
                view.set_window(center, width)
