"""YOLO detection layout: labels/<split>/<stem>.txt beside images/<split>/<stem>.png, data.yaml.

The classes are the detection tasks (`detection.detection_tasks`: region tasks and tasks with
boxes), in schema order. Each line is `class x_center y_center width height`, normalised to
0..1; an image without boxes gets an empty file (a background image). `data.yaml` lists the
splits that have images and has no `path` key, so tools resolve the folders relative to the YAML
file. Without any detection task nothing is written (the exporter notes why).
"""

from __future__ import annotations

import json

from skelex_desktop.core.export.detection import detection_tasks
from skelex_desktop.core.export.options import SPLITS
from skelex_desktop.core.export.record import ExportRecord, boxes, category_ids
from skelex_desktop.core.export.selection import TaskInfo


def label_lines(record: ExportRecord, ids: dict[str, int]) -> str:
    lines = []
    for task, x, y, w, h, _value in boxes(record):
        cx, cy = (x + w / 2) / record.width, (y + h / 2) / record.height
        lines.append(
            f"{ids[task]} {cx:.6f} {cy:.6f} {w / record.width:.6f} {h / record.height:.6f}"
        )
    return "\n".join(lines) + ("\n" if lines else "")


def data_yaml(tasks: list[TaskInfo], splits: list[str]) -> str:
    """`train`/`val`/`test` (those with images; relative to the file), `nc` and `names`."""
    lines = [f"{split}: images/{split}" for split in splits]
    lines.append(f"nc: {len(tasks)}")
    lines.append("names:")
    lines += [f"  {i}: {json.dumps(t.name)}" for i, t in enumerate(tasks)]
    return "\n".join(lines) + "\n"


def yolo_files(records: list[ExportRecord], tasks: list[TaskInfo]) -> dict[str, bytes]:
    """Relative path -> content of the YOLO label files and data.yaml (none without boxes)."""
    tasks = detection_tasks(records, tasks)
    if not tasks:
        return {}
    ids = category_ids(tasks)
    files = {f"labels/{r.split}/{r.stem}.txt": label_lines(r, ids).encode("utf-8") for r in records}
    splits = [s for s in SPLITS if any(r.split == s for r in records)]
    files["data.yaml"] = data_yaml(tasks, splits).encode("utf-8")
    return files
