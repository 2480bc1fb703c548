"""Draw the application icon (a long bone on a radiograph-dark tile) as PNG and ICO files.

    python installer/make_icon.py            # writes installer/skelex-desktop.png (256 px),
                                             # -48.png, -128.png and skelex-desktop.ico
Drawn with Qt's painter, so it needs nothing beyond the application's own dependencies.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPointF, QRectF, Qt  # noqa: E402
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPainter, QPainterPath, QPen  # noqa: E402

HERE = Path(__file__).resolve().parent
SIZES = (48, 128, 256)


def draw(size: int) -> QImage:
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    p = QPainter(image)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.scale(size / 256, size / 256)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(QColor("#14213d"))
    p.drawRoundedRect(QRectF(8, 8, 240, 240), 44, 44)
    # the bone: a shaft with two rounded ends, drawn along the diagonal
    p.translate(128, 128)
    p.rotate(-45)
    bone = QPainterPath()
    bone.setFillRule(Qt.FillRule.WindingFill)
    bone.addRoundedRect(QRectF(-70, -16, 140, 32), 10, 10)
    for x in (-78, 78):
        for y in (-19, 19):
            bone.addEllipse(QPointF(x, y), 24, 24)
    p.setBrush(QColor("#e9eef5"))
    p.drawPath(bone.simplified())
    # a hotspot ring: the error map marking a finding
    p.resetTransform()
    p.scale(size / 256, size / 256)
    p.setBrush(Qt.BrushStyle.NoBrush)
    p.setPen(QPen(QColor("#ff8c1a"), 12))
    p.drawEllipse(QPointF(150, 106), 34, 34)
    p.end()
    return image


def main() -> int:
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    del app
    for size in SIZES:
        name = "skelex-desktop.png" if size == 256 else f"skelex-desktop-{size}.png"
        if not draw(size).save(str(HERE / name)):
            raise SystemExit(f"cannot write {HERE / name}")
    if not draw(256).save(str(HERE / "skelex-desktop.ico"), "ICO"):
        print("note: this Qt has no ICO writer; skelex-desktop.ico not written", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
