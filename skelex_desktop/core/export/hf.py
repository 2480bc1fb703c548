"""Hugging Face imagefolder: images/<split>/metadata.jsonl next to the split's PNG files.

`datasets.load_dataset("imagefolder", data_dir="<export>/images")` gives the splits train,
validation (from the `val` folder) and test with one column per task. `datasets` requires the
metadata files of all splits to have identical column types, so no value is ever null here:
binary and region tasks are integers with -100 for "no label" (the usual ignore index), every
other task is a string with "" for "no label". Boxes are in the COCO and YOLO files.
"""

from __future__ import annotations

import json
from typing import Any

from skelex_desktop.core.export.options import SPLITS
from skelex_desktop.core.export.record import IMAGES_DIR, ExportRecord
from skelex_desktop.core.export.selection import TaskInfo

NO_LABEL_INT = -100
DROPPED = ("file", "image", "regions", "measurement_list")
INTEGER_KINDS = ("binary", "region")


def hf_value(task: TaskInfo, value: Any) -> Any:
    """A task value with a type that does not depend on whether it is present."""
    if task.kind in INTEGER_KINDS:
        return NO_LABEL_INT if value is None else int(value)
    return "" if value is None else str(value)


def hf_files(records: list[ExportRecord], tasks: list[TaskInfo]) -> dict[str, bytes]:
    """Relative path -> content of each split's metadata.jsonl."""
    by_name = {t.name: t for t in tasks}
    files: dict[str, bytes] = {}
    for split in SPLITS:
        lines = []
        for record in (r for r in records if r.split == split):
            row: dict[str, Any] = {"file_name": record.file_name}
            for key, value in record.row.items():
                if key in DROPPED:
                    continue
                row[key] = hf_value(by_name[key], value) if key in by_name else value
            lines.append(json.dumps(row, ensure_ascii=False))
        if lines:
            files[f"{IMAGES_DIR}/{split}/metadata.jsonl"] = ("\n".join(lines) + "\n").encode()
    return files
