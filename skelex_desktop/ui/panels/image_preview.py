"""Preview of the selected worklist image at its default window, with its key facts."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget

from skelex_desktop.ui.viewer.rendering import to_qimage, windowed_uint8


class ImagePreview(QWidget):
    """Shows one image; the caption states size, photometric and calibration plainly."""

    def __init__(self) -> None:
        super().__init__()
        self._pixmap: QPixmap | None = None
        self.picture = QLabel("Select an image in the worklist")
        self.picture.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.picture.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.picture.setMinimumSize(200, 200)
        self.picture.setStyleSheet("background: black; color: #bbb;")
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.picture, 1)
        layout.addWidget(self.caption)

    def show_file(self, path: Path, frame: int = 0) -> None:
        from skelex_desktop.core.ingest.pixels import read_frame

        try:
            loaded = read_frame(path, frame)
        except Exception as exc:  # a vanished or unreadable file is shown, not raised
            self._pixmap = None
            self.picture.setText(f"Cannot display {path.name}: {exc}")
            self.caption.setText("")
            return
        if loaded.rgb is not None:
            pixels = loaded.rgb
        else:
            center, width = loaded.window
            pixels = windowed_uint8(loaded.values, center, width)
        self._pixmap = QPixmap.fromImage(to_qimage(pixels))
        rows, cols = loaded.values.shape[:2]
        if loaded.pixel_spacing:
            spacing = (
                f"{loaded.pixel_spacing[0]:.3f} x {loaded.pixel_spacing[1]:.3f} mm "
                f"({loaded.calibration}, from {loaded.spacing_source})"
            )
        else:
            spacing = "UNCALIBRATED: no pixel spacing, no measurements in mm"
        self.caption.setText(f"{path.name} - {cols} x {rows} px - {spacing}")
        self._rescale()

    def clear(self) -> None:
        self._pixmap = None
        self.picture.setText("Select an image in the worklist")
        self.caption.setText("")

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap is None or self._pixmap.isNull():
            return
        self.picture.setPixmap(
            self._pixmap.scaled(
                self.picture.size(),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )
