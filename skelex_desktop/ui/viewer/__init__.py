"""The radiograph canvas (QGraphicsView): image, overlay and region items, tools."""
