"""One row per image: the table behind labels.csv, labels.jsonl and the HF metadata.

Task columns hold 1/0/-1 (positive/negative/uncertain) for binary tasks, the class name (or
`uncertain`) for multi-class and ordinal tasks, the number for regression tasks and the number of
boxes for region tasks; an empty cell (null) means the task has no current label.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from typing import Any

from skelex_desktop.core.export.selection import ExportItem, LabelInfo, TaskInfo
from skelex_desktop.core.review.measurements import MeasurementView

UNCERTAIN = "uncertain"
FIXED_COLUMNS = (
    "image",
    "file",
    "split",
    "patient",
    "study_instance_uid",
    "sop_instance_uid",
    "frame",
    "modality",
    "body_part",
    "view",
    "laterality",
    "rows",
    "cols",
)
TRAILING_COLUMNS = ("reader", "source", "model_version", "measurements")


def encode_value(task: TaskInfo, label: LabelInfo | None, item: ExportItem) -> Any:
    """The exported value of one task for one image (see the module docstring)."""
    if task.kind == "region":
        return sum(1 for r in item.regions if r.task == task.name)
    if label is None:
        return None
    if task.kind == "binary":
        if label.uncertain:
            return -1
        return None if label.value is None else int(label.value)
    if task.kind in ("multiclass", "ordinal"):
        return UNCERTAIN if label.uncertain else (None if label.value is None else str(label.value))
    if label.uncertain or label.value is None:
        return None
    return float(label.value)


def measurements_text(measurements: list[MeasurementView]) -> str:
    """The CSV cell of an image's measurements: `length 12.3 mm; angle 23.0 deg`."""
    return "; ".join(f"{m.kind} {m.value:.1f} {m.unit}" for m in measurements)


STUDY_COLUMNS = ["study_instance_uid", "patient", "split", "images"]


def study_rows(rows: list[dict[str, Any]], study_tasks: list[str]) -> list[dict[str, Any]]:
    """One row per study for the study-scoped tasks (the same value on each of its images)."""
    studies: dict[str, dict[str, Any]] = {}
    for row in rows:
        study = studies.setdefault(
            row["study_instance_uid"],
            {k: row[k] for k in STUDY_COLUMNS[:3]} | {"images": 0},
        )
        study["images"] += 1
        for task in study_tasks:
            if study.get(task) is None:
                study[task] = row.get(task)
    return list(studies.values())


def columns(
    tasks: list[TaskInfo],
    with_image_id: bool,
    with_ai: bool = False,
    readers: list[str] | None = None,
) -> list[str]:
    """The CSV header; `readers` (as exported, pseudonyms when de-identified): the read
    columns `<task>__<reader>` after the AI's."""
    fixed = list(FIXED_COLUMNS) + (["image_id"] if with_image_id else [])
    ai = [f"ai_{t.name}{part}" for t in tasks for part in AI_PARTS] if with_ai else []
    reads = [read_column(t, r) for t in tasks if t.kind != "region" for r in readers or []]
    return fixed + [t.name for t in tasks] + list(TRAILING_COLUMNS) + ai + reads


def read_column(task: TaskInfo, reader: str) -> str:
    """The column of one reader's reads of a task: `<task>__<reader>`."""
    return f"{task.name}__{reader}"


def read_columns(
    tasks: list[TaskInfo], item: ExportItem, exported: Callable[[str], str]
) -> dict[str, Any]:
    """Each reader's own current decision per task, encoded as the label columns are, in
    columns `<task>__<reader>` beside the task's (final) label; `exported` gives the reader's
    exported name (a pseudonym when de-identified). Readers without a read of this image have
    no key here (an empty cell in CSV)."""
    out: dict[str, Any] = {}
    for task in tasks:
        if task.kind == "region":
            continue
        for reader, read in sorted(item.reads.get(task.name, {}).items()):
            out[read_column(task, exported(reader))] = encode_value(task, read, item)
    return out


AI_PARTS = ("", "_p", "_model")  # ai_<task>: the suggestion; _p its probability; _model who


def ai_columns(tasks: list[TaskInfo], item: ExportItem) -> dict[str, Any]:
    """The AI's suggestion per task, in columns of their own (`ai_<task>`, `ai_<task>_p`,
    `ai_<task>_model`), encoded as the labels are (binary 1/0, class names); empty when the AI
    suggested nothing. Never mixed into the label columns."""
    out: dict[str, Any] = {}
    for task in tasks:
        ai = item.ai.get(task.name)
        value = None
        if ai is not None and ai.value is not None:
            value = int(ai.value) if task.kind == "binary" else str(ai.value)
        out[f"ai_{task.name}"] = value
        out[f"ai_{task.name}_p"] = ai.probability if ai is not None else None
        out[f"ai_{task.name}_model"] = ai.model if ai is not None else None
    return out


def to_csv(rows: list[dict[str, Any]], header: list[str]) -> bytes:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in header})
    return buf.getvalue().encode("utf-8")


def to_jsonl(rows: list[dict[str, Any]]) -> bytes:
    lines = [json.dumps(row, ensure_ascii=False, sort_keys=False) for row in rows]
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""
