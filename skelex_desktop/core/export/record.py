"""An exported image as the format writers see it: pseudonymous name, split, file and row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from skelex_desktop.core.export.selection import ExportItem, TaskInfo

IMAGES_DIR = "images"


@dataclass
class ExportRecord:
    """`image_file` is relative to the export root (None when images are not exported)."""

    item: ExportItem
    stem: str
    split: str
    image_file: str | None
    row: dict[str, Any]
    width: int
    height: int

    @property
    def file_name(self) -> str:
        """The image file name within its split folder (planned even when not exported)."""
        return self.image_file.rsplit("/", 1)[-1] if self.image_file else f"{self.stem}.png"


def category_ids(tasks: list[TaskInfo]) -> dict[str, int]:
    """Task name -> 0-based class index, in schema order (COCO ids are this + 1)."""
    return {task.name: i for i, task in enumerate(tasks)}


def boxes(record: ExportRecord) -> list[tuple[str, float, float, float, float, Any]]:
    """(task, x, y, width, height, value) of each region, clipped to the image."""
    out = []
    for r in record.item.regions:
        x0, x1 = sorted((max(0.0, r.x0), min(float(record.width), r.x1)))
        y0, y1 = sorted((max(0.0, r.y0), min(float(record.height), r.y1)))
        if x1 > x0 and y1 > y0:
            out.append((r.task, x0, y0, x1 - x0, y1 - y0, r.value))
    return out
