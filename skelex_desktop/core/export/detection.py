"""Detection categories of the COCO and YOLO files: the chosen tasks that carry boxes."""

from __future__ import annotations

from skelex_desktop.core.export.record import ExportRecord
from skelex_desktop.core.export.selection import TaskInfo

DETECTION_FORMATS = ("coco", "yolo")


def detection_tasks(records: list[ExportRecord], tasks: list[TaskInfo]) -> list[TaskInfo]:
    """The region tasks and the tasks with at least one exported box, in schema order.

    Readers draw boxes on the task they are deciding (a fracture box on the binary `fracture`
    task), so a task with a box is a detection class; image-level tasks without boxes are not.
    """
    boxed = {r.task for record in records for r in record.item.regions}
    return [t for t in tasks if t.kind == "region" or t.name in boxed]


def detection_notes(
    records: list[ExportRecord], tasks: list[TaskInfo], formats: tuple[str, ...]
) -> list[str]:
    """The note for a COCO/YOLO export without any detection category (nothing is written)."""
    asked = [f for f in formats if f in DETECTION_FORMATS]
    if not asked or detection_tasks(records, tasks):
        return []
    names = ", ".join(t.name for t in tasks)
    return [
        f"{' and '.join(asked)}: no detection files written, since none of the chosen tasks "
        f"({names}) is a region task or has a box; image-level labels are in csv, jsonl and hf"
    ]
