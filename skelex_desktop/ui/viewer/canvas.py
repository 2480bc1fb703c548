"""The radiograph canvas: full-resolution image, window/level, zoom, pan, rotate, flip, readout.

Scene coordinates are full-resolution image pixel coordinates (the image item sits at the
origin, unscaled), so overlays, hotspots and regions need no conversion.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QMouseEvent,
    QPainter,
    QPen,
    QPixmap,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsLineItem,
    QGraphicsPixmapItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QLabel,
)

from skelex_desktop.core.ingest.frame import Frame
from skelex_desktop.ui.viewer.rendering import (
    DisplayFrame,
    OverlaySource,
    overlay_image,
    overlay_source,
    prepare_display,
    to_qimage,
    windowed_uint8,
)
from skelex_desktop.ui.viewer.windowing import Window, drag_window

MIN_ZOOM, MAX_ZOOM = 0.02, 40.0


MEASURE_COLOUR = "#ffd75e"  # lengths and angles: amber, apart from the map's colours


class RadiographView(QGraphicsView):
    """Shows one frame; emits `readout` text as the mouse moves and `box_drawn` for regions."""

    readout = Signal(str)
    box_drawn = Signal(QRectF)
    line_drawn = Signal(QPointF, QPointF)  # measure mode: a line in full-resolution pixels
    window_changed = Signal(float, float)
    zoom_changed = Signal(float, bool)  # the reader's zoom (scale), and whether it is "fit"

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("imageView")
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QBrush(Qt.GlobalColor.black))
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setMouseTracking(True)
        self.image_item = QGraphicsPixmapItem()
        self.image_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.overlay_item = QGraphicsPixmapItem()
        self.overlay_item.setZValue(1)
        self.scene().addItem(self.image_item)
        self.scene().addItem(self.overlay_item)
        self.hotspot_items: list[QGraphicsRectItem] = []
        self.region_items: list[QGraphicsRectItem] = []
        self.driver_items: list[QGraphicsRectItem] = []
        self.frame: Frame | None = None
        self.window: Window = (0.5, 1.0)
        self.presets: dict[str, Window] = {}
        self.invert = False
        self.rotation = 0
        self.flip_h = False
        self.flip_v = False
        self.zoom = 1.0
        self.fit_mode = True  # keep fitting on resize until the reader zooms
        self.box_mode = False
        self.measure_mode = False
        self.measure_items: list[QGraphicsItem] = []
        self._line_start: QPointF | None = None
        self._rubber_line: QGraphicsLineItem | None = None
        self._drag_start: QPointF | None = None
        self._drag_window: Window | None = None
        self._box_start: QPointF | None = None
        self._rubber: QGraphicsRectItem | None = None
        self._value_range = 1.0
        self.notice = QLabel(self.viewport())
        self.notice.setStyleSheet("color: #ffd23f; background: transparent; font-weight: bold;")
        self.notice.setWordWrap(True)
        self.notice.move(8, 8)
        self.markers = QLabel(self.viewport())
        self.markers.setStyleSheet("color: white; background: transparent; font-size: 16pt;")

    # --- content -------------------------------------------------------------------------
    def set_frame(self, shown: Frame | DisplayFrame, laterality: str = "", view: str = "") -> None:
        """Show a frame at its default window, fitted; clears overlay, hotspots and regions.

        A `DisplayFrame` prepared off the GUI thread costs only the pixmap upload here.
        """
        display = shown if isinstance(shown, DisplayFrame) else prepare_display(shown)
        frame = display.frame
        self.frame = frame
        self.presets = display.presets
        self._value_range = display.value_range
        self.window = frame.window
        self.invert = False
        self.rotation, self.flip_h, self.flip_v = 0, False, False
        self.clear_overlay()
        self.set_hotspots([])
        self.set_regions([])
        self.set_driver(None)
        self.set_measurements([])
        rows, cols = frame.shape
        self.scene().setSceneRect(QRectF(0, 0, cols, rows))
        self.image_item.setPixmap(QPixmap.fromImage(display.image))
        if frame.pixel_spacing is None:
            self.notice.setText("UNCALIBRATED - no pixel spacing; distances in pixels only")
        elif frame.calibration == "detector":
            self.notice.setText("Detector spacing (not corrected to the patient)")
        else:
            self.notice.setText("")
        self.notice.adjustSize()
        self.markers.setText(" ".join(t for t in (laterality, view) if t))
        self.markers.adjustSize()
        self._place_markers()
        self.fit()

    def clear_frame(self) -> None:
        """Show nothing (until the next `set_frame`)."""
        self.frame = None
        self.image_item.setPixmap(QPixmap())
        self.clear_overlay()
        self.set_hotspots([])
        self.set_regions([])
        self.set_driver(None)
        self.notice.setText("")
        self.markers.setText("")

    def set_window(self, center: float, width: float) -> None:
        self.window = (float(center), max(float(width), 1e-6))
        self._render()
        self.window_changed.emit(*self.window)

    def apply_preset(self, name: str) -> None:
        if name in self.presets:
            self.set_window(*self.presets[name])

    def toggle_invert(self) -> None:
        self.invert = not self.invert
        self._render()

    def _render(self) -> None:
        if self.frame is None:
            return
        if self.frame.rgb is not None and not self.invert:
            pixels = self.frame.rgb
        else:
            pixels = windowed_uint8(self.frame.values, *self.window, invert=self.invert)
        self.image_item.setPixmap(QPixmap.fromImage(to_qimage(pixels)))

    # --- overlay, hotspots, regions ------------------------------------------------------
    def set_overlay(
        self,
        source: OverlaySource | np.ndarray,
        colormap: str = "hot",
        opacity: float = 0.55,
        threshold: float = 0.0,
    ) -> None:
        """Draw an error map over the image; its geometry must be the image's geometry."""
        if isinstance(source, np.ndarray):
            source = overlay_source(source)
        if self.frame is not None and source.full_shape != self.frame.shape:
            raise ValueError(
                f"error map {source.full_shape} does not match the image {self.frame.shape}"
            )
        self.overlay_item.setPixmap(
            QPixmap.fromImage(overlay_image(source, colormap, opacity, threshold))
        )
        self.overlay_item.setScale(source.factor)  # back onto full-resolution coordinates

    def clear_overlay(self) -> None:
        self.overlay_item.setPixmap(QPixmap())

    def set_overlay_visible(self, visible: bool) -> None:
        self.overlay_item.setVisible(visible)

    def _boxes(
        self, items: list[QGraphicsRectItem], boxes: list[tuple[float, float, float, float]], color
    ) -> list[QGraphicsRectItem]:
        for item in items:
            self.scene().removeItem(item)
        pen = QPen(QColor(color), 0)
        pen.setCosmetic(True)
        pen.setWidth(2)
        created = []
        for x0, y0, x1, y1 in boxes:
            item = self.scene().addRect(QRectF(x0, y0, x1 - x0, y1 - y0), pen)
            item.setZValue(2)
            created.append(item)
        return created

    def set_hotspots(self, boxes: list[tuple[float, float, float, float]]) -> None:
        self.hotspot_items = self._boxes(self.hotspot_items, boxes, "#00e5ff")

    def set_regions(self, boxes: list[tuple[float, float, float, float]]) -> None:
        self.region_items = self._boxes(self.region_items, boxes, "#7CFC00")

    def set_measurements(self, shown: list[tuple[list[tuple[float, float]], str]]) -> None:
        """Draw measurements: each a polyline of full-resolution points (a length: two; an
        angle: two lines of two) and its label beside its first point."""
        for item in self.measure_items:
            self.scene().removeItem(item)
        self.measure_items = []
        pen = QPen(QColor(MEASURE_COLOUR), 0)
        pen.setCosmetic(True)
        pen.setWidth(2)
        for points, label in shown:
            for a, b in zip(points[0::2], points[1::2], strict=False):
                line = self.scene().addLine(a[0], a[1], b[0], b[1], pen)
                line.setZValue(3)
                self.measure_items.append(line)
            text = self.scene().addSimpleText(label)
            text.setBrush(QColor(MEASURE_COLOUR))
            text.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
            text.setPos(points[0][0] + 4, points[0][1] + 4)
            text.setZValue(3)
            self.measure_items.append(text)

    def set_driver(self, box: tuple[float, float, float, float] | None) -> None:
        """The crop that drove the current task's region-guided suggestion (magenta)."""
        self.driver_items = self._boxes(self.driver_items, [box] if box else [], "#ff4fd8")

    def zoom_to(self, box: tuple[float, float, float, float], margin: float = 0.5) -> None:
        x0, y0, x1, y1 = box
        w, h = x1 - x0, y1 - y0
        rect = QRectF(x0 - w * margin, y0 - h * margin, w * (1 + 2 * margin), h * (1 + 2 * margin))
        self.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        self.zoom = self.transform().mapRect(QRectF(0, 0, 1, 1)).width()
        self.fit_mode = False

    # --- geometry ------------------------------------------------------------------------
    def _apply_transform(self) -> None:
        t = QTransform()
        t.rotate(self.rotation)
        t.scale(-self.zoom if self.flip_h else self.zoom, -self.zoom if self.flip_v else self.zoom)
        self.setTransform(t)

    def fit(self) -> None:
        if self.frame is None:
            return
        rect = self.scene().sceneRect()
        rotated = self.rotation % 180 == 90
        w, h = (rect.height(), rect.width()) if rotated else (rect.width(), rect.height())
        view = self.viewport().rect()
        self.zoom = max(MIN_ZOOM, min(view.width() / max(w, 1), view.height() / max(h, 1)))
        self.fit_mode = True
        self._apply_transform()
        self.centerOn(rect.center())
        self.zoom_changed.emit(self.zoom, True)

    def actual_size(self) -> None:
        self.set_zoom(1.0)

    def zoom_by(self, factor: float) -> None:
        self.set_zoom(self.zoom * factor)

    def set_zoom(self, zoom: float) -> None:
        """A fixed scale (screen pixels per image pixel); fitting stops."""
        self.zoom = min(MAX_ZOOM, max(MIN_ZOOM, zoom))
        self.fit_mode = False
        self._apply_transform()
        self.zoom_changed.emit(self.zoom, False)

    def rotate_by(self, degrees: int) -> None:
        self.rotation = (self.rotation + degrees) % 360
        self.fit()

    def toggle_flip(self, horizontal: bool = True) -> None:
        if horizontal:
            self.flip_h = not self.flip_h
        else:
            self.flip_v = not self.flip_v
        self._apply_transform()

    def image_point(self, view_pos: QPointF) -> tuple[float, float]:
        """Full-resolution image coordinates of a viewport position."""
        p = self.mapToScene(view_pos.toPoint())
        return p.x(), p.y()

    # --- events ------------------------------------------------------------------------------
    def wheelEvent(self, event: QWheelEvent) -> None:
        self.zoom_by(1.25 if event.angleDelta().y() > 0 else 0.8)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.RightButton:
            self._drag_start = event.position()
            self._drag_window = self.window
            return
        if event.button() == Qt.MouseButton.LeftButton and self.measure_mode and self.frame:
            self._line_start = self.mapToScene(event.position().toPoint())
            pen = QPen(QColor(MEASURE_COLOUR), 0)
            pen.setStyle(Qt.PenStyle.DashLine)
            start = self._line_start
            self._rubber_line = self.scene().addLine(
                start.x(), start.y(), start.x(), start.y(), pen
            )
            return
        if event.button() == Qt.MouseButton.LeftButton and self.box_mode and self.frame:
            self._box_start = self.mapToScene(event.position().toPoint())
            pen = QPen(QColor("#7CFC00"), 0)
            pen.setStyle(Qt.PenStyle.DashLine)
            self._rubber = self.scene().addRect(QRectF(self._box_start, self._box_start), pen)
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._drag_start is not None and self._drag_window is not None:
            delta = event.position() - self._drag_start
            self.set_window(
                *drag_window(self._drag_window, delta.x(), delta.y(), self._value_range)
            )
        elif self._line_start is not None and self._rubber_line is not None:
            end = self.mapToScene(event.position().toPoint())
            start = self._line_start
            self._rubber_line.setLine(start.x(), start.y(), end.x(), end.y())
        elif self._box_start is not None and self._rubber is not None:
            end = self.mapToScene(event.position().toPoint())
            self._rubber.setRect(QRectF(self._box_start, end).normalized())
        self.readout.emit(self.readout_text(event.position()))
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.RightButton and self._drag_start is not None:
            self._drag_start = self._drag_window = None
            return
        if event.button() == Qt.MouseButton.LeftButton and self._line_start is not None:
            start, end = self._line_start, self.mapToScene(event.position().toPoint())
            if self._rubber_line is not None:
                self.scene().removeItem(self._rubber_line)
            self._line_start, self._rubber_line = None, None
            if (end - start).manhattanLength() >= 2:
                self.line_drawn.emit(start, end)
            return
        if event.button() == Qt.MouseButton.LeftButton and self._box_start is not None:
            rect = self._rubber.rect() if self._rubber else QRectF()
            if self._rubber is not None:
                self.scene().removeItem(self._rubber)
            self._box_start, self._rubber = None, None
            rect = rect.intersected(self.scene().sceneRect())
            if rect.width() >= 2 and rect.height() >= 2:
                self.box_drawn.emit(rect)
            return
        super().mouseReleaseEvent(event)

    def readout_text(self, view_pos: QPointF) -> str:
        """Pixel value, x/y and (when calibrated) mm under a viewport position."""
        if self.frame is None:
            return ""
        x, y = self.image_point(view_pos)
        rows, cols = self.frame.shape
        if not (0 <= x < cols and 0 <= y < rows):
            return ""
        value = self.frame.values[int(y), int(x)]
        text = f"x {int(x)}  y {int(y)}  value {value:.0f}"
        if self.frame.pixel_spacing is not None:
            row_mm, col_mm = self.frame.pixel_spacing
            text += f"  ({x * col_mm:.1f} mm, {y * row_mm:.1f} mm)"
        c, w = self.window
        return f"{text}  W {w:.0f} L {c:.0f}"

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._place_markers()
        if self.fit_mode:
            self.fit()

    def _place_markers(self) -> None:
        self.markers.move(self.viewport().width() - self.markers.width() - 12, 8)
        # the notice wraps left of the markers in a narrow view instead of running under them
        self.notice.setMaximumWidth(max(80, self.viewport().width() - self.markers.width() - 32))
        self.notice.adjustSize()
