"""COCO detection files, one per split: annotations/instances_<split>.json.

Images are referenced relative to the `images/` folder (`train/P0001_00001.png`); categories are
the detection tasks (`detection.detection_tasks`: region tasks and tasks with boxes; ids 1..k in
schema order, the same in every split); each region is one box annotation (with its rectangle as
the polygon), and the image-level labels of every chosen task ride along in `images[].labels`.
Without any detection task nothing is written (the exporter notes why).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from skelex_desktop import __version__
from skelex_desktop.core.export.detection import detection_tasks
from skelex_desktop.core.export.options import SPLITS
from skelex_desktop.core.export.record import ExportRecord, boxes, category_ids
from skelex_desktop.core.export.selection import TaskInfo


def coco_document(
    records: list[ExportRecord], tasks: list[TaskInfo], categories: list[TaskInfo], split: str
) -> dict[str, Any]:
    ids = category_ids(categories)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, record in enumerate((r for r in records if r.split == split), start=1):
        images.append(
            {
                "id": image_id,
                "file_name": f"{split}/{record.file_name}",
                "width": record.width,
                "height": record.height,
                "labels": {t.name: record.row.get(t.name) for t in tasks if t.kind != "region"},
            }
        )
        for task, x, y, w, h, value in boxes(record):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": ids[task] + 1,
                    "bbox": [round(x, 3), round(y, 3), round(w, 3), round(h, 3)],
                    "area": round(w * h, 3),
                    "iscrowd": 0,
                    "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]],
                    "attributes": {"value": value},
                }
            )
    return {
        "info": {
            "description": f"SKELEX Desktop export ({split})",
            "version": __version__,
            "date_created": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": ids[t.name] + 1, "name": t.name, "supercategory": t.kind} for t in categories
        ],
    }


def coco_files(records: list[ExportRecord], tasks: list[TaskInfo]) -> dict[str, bytes]:
    """Relative path -> content of the COCO files (none without a detection task)."""
    categories = detection_tasks(records, tasks)
    if not categories:
        return {}
    return {
        f"annotations/instances_{split}.json": json.dumps(
            coco_document(records, tasks, categories, split), indent=1, ensure_ascii=False
        ).encode("utf-8")
        for split in SPLITS
    }
