"""Hugging Face imagefolder: images/<split>/metadata.parquet next to the split's PNG files.

`datasets.load_dataset("imagefolder", data_dir="<export>/images")` gives the splits train,
validation (from the `val` folder) and test. The column types travel in the Parquet schema
metadata (key `huggingface`, as `datasets` itself writes them), identical in every split file,
so the features are the same in every split whatever values a split happens to have:

* binary, multi-class and ordinal tasks: `<task>` is a `ClassLabel` of the task's classes
  (binary: [negative, positive] names of the schema) holding -1 when there is no usable label
  (no label or uncertain; -1 is the only missing value ClassLabel accepts), `<task>_target`
  the same index with -100 instead (PyTorch CrossEntropyLoss's default ignore_index) and
  `<task>_uncertain` whether the reader marked the label uncertain;
* regression tasks: `<task>` float64, null (NaN in torch format) without a usable label, and
  `<task>_uncertain`; region tasks: `<task>` the number of boxes (the boxes are in COCO/YOLO);
* per image: `stem` (labels.csv's `image`: `image` is the decoded picture here), `image_id` (not when de-identified),
  `split`, `patient`, `frame`, `modality`, `body_part`, `view`, `laterality`, `rows`, `cols`.
  UIDs, readers, model versions and measurements are in labels.csv/jsonl only.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from skelex_desktop.core.export.options import SPLITS, ExportError
from skelex_desktop.core.export.record import IMAGES_DIR, ExportRecord
from skelex_desktop.core.export.selection import TaskInfo

NO_LABEL = -1  # datasets' ClassLabel value for a missing label
IGNORE_INDEX = -100  # torch.nn.CrossEntropyLoss(ignore_index=-100), its default
CLASS_KINDS = ("binary", "multiclass", "ordinal")
METADATA = "metadata.parquet"
IMAGE_COLUMNS = (  # (row key, dtype); the row's `image` (its stem) is `stem` here
    ("image", "string"),
    ("image_id", "int64"),
    ("split", "string"),
    ("patient", "string"),
    ("frame", "int64"),
    ("modality", "string"),
    ("body_part", "string"),
    ("view", "string"),
    ("laterality", "string"),
    ("rows", "int64"),
    ("cols", "int64"),
)


@dataclass(frozen=True)
class Column:
    """One metadata column: its Arrow type name, its `datasets` feature and its value."""

    name: str
    dtype: str  # "string", "int64", "float64" or "bool"
    feature: dict[str, Any]
    value: Callable[[ExportRecord], Any]


def _value_feature(dtype: str) -> dict[str, Any]:
    return {"dtype": dtype, "_type": "Value"}


def _row_column(key: str, dtype: str) -> Column:
    """A column holding the image row's own value (the row's `image` is named `stem`)."""
    name = "stem" if key == "image" else key
    return Column(name, dtype, _value_feature(dtype), lambda record: record.row[key])


def class_index(task: TaskInfo, record: ExportRecord) -> int | None:
    """The class index of the image's label, None when there is none or it is uncertain."""
    label = record.item.labels.get(task.name)
    if label is None or label.uncertain or label.value is None:
        return None
    if task.kind == "binary":
        return int(label.value)
    if str(label.value) not in task.classes:
        raise ExportError(
            f"task {task.name!r}: the label {label.value!r} of image {record.stem} is not one of "
            f"its classes {list(task.classes)}; correct the label or the schema and export again"
        )
    return task.classes.index(str(label.value))


def _uncertain(task: TaskInfo) -> Column:
    def value(record: ExportRecord) -> bool:
        label = record.item.labels.get(task.name)
        return label is not None and label.uncertain

    return Column(f"{task.name}_uncertain", "bool", _value_feature("bool"), value)


def task_columns(task: TaskInfo) -> list[Column]:
    """The metadata columns of one task (see the module docstring)."""
    if task.kind in CLASS_KINDS:

        def label(record: ExportRecord) -> int:
            index = class_index(task, record)
            return NO_LABEL if index is None else index

        def target(record: ExportRecord) -> int:
            index = class_index(task, record)
            return IGNORE_INDEX if index is None else index

        names = {"names": list(task.classes), "_type": "ClassLabel"}
        return [
            Column(task.name, "int64", names, label),
            Column(f"{task.name}_target", "int64", _value_feature("int64"), target),
            _uncertain(task),
        ]
    if task.kind == "regression":
        return [
            _row_column(task.name, "float64"),
            _uncertain(task),
        ]
    return [_row_column(task.name, "int64")]


def columns(records: list[ExportRecord], tasks: list[TaskInfo]) -> list[Column]:
    """Every metadata column, `file_name` first; `image_id` only when the rows carry it."""
    present = set(records[0].row) if records else set()
    out = [Column("file_name", "string", _value_feature("string"), lambda r: r.file_name)]
    out += [_row_column(name, dtype) for name, dtype in IMAGE_COLUMNS if name in present]
    for task in tasks:
        out += task_columns(task)
    return out


def parquet_bytes(cols: list[Column], records: list[ExportRecord]) -> bytes:
    """One split's metadata as Parquet with the `datasets` features in its schema metadata.

    The identity scan of a de-identified export reads files it does not parse as raw bytes, on
    word boundaries; so the file is uncompressed, without dictionaries or statistics (every text
    value appears once, as written) and has one value per data page: a value is then followed by
    the next page header (a non-word byte), not by the next value's length, whose low byte can
    be a letter or digit (a 48-character value has length byte "0") and would hide it.
    """
    try:
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.parquet as pq  # type: ignore[import-untyped]
    except ImportError as exc:  # only the hf format needs it
        raise ExportError(
            "format hf needs pyarrow, which this installation lacks (the reader edition leaves it"
            " out): use the full edition, or pip install pyarrow"
        ) from exc
    arrow = {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
    }
    features = {c.name: c.feature for c in cols}
    schema = pa.schema(
        [pa.field(c.name, arrow[c.dtype]) for c in cols],
        metadata={"huggingface": json.dumps({"info": {"features": features}})},
    )
    table = pa.table({c.name: [c.value(r) for r in records] for c in cols}, schema=schema)
    buf = io.BytesIO()
    pq.write_table(
        table,
        buf,
        compression="none",
        use_dictionary=False,
        write_statistics=False,
        data_page_size=1,
        write_batch_size=1,
    )
    return buf.getvalue()


def hf_files(records: list[ExportRecord], tasks: list[TaskInfo]) -> dict[str, bytes]:
    """Relative path -> content of each split's metadata.parquet (splits with images only)."""
    cols = columns(records, tasks)
    files: dict[str, bytes] = {}
    for split in SPLITS:
        chosen = [r for r in records if r.split == split]
        if chosen:
            files[f"{IMAGES_DIR}/{split}/{METADATA}"] = parquet_bytes(cols, chosen)
    return files
