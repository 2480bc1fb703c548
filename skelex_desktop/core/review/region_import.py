"""`import_boxes`: boxes of region tasks from a CSV or a COCO detection JSON, all or nothing.

Two forms, both in full-resolution pixels of the imported image, as the window stores regions:
- a CSV with columns `image` (or `image_id`, `file`, `sop_instance_uid`: as in a label CSV),
  `task`, `x0`, `y0`, `x1`, `y1` [, `reader`]; one box per row;
- a COCO detection JSON: `images[].file_name` is the image reference, `annotations[].bbox` is
  [x, y, width, height] and `categories[].name` the task.

A task (or category) name is mapped through `names` first (`--map NAME=TASK`), then must be a
region task of the schema. A box must lie inside its image, with x0 < x1 and y0 < y1. Every bad
row or annotation is reported with its reason, and then nothing is stored; otherwise every box
is stored in one transaction through `regions.store_region`, as a reader's box (the reader
column or the importing reader), with an audit row naming the file. A box equal to a current
region of the same image and task (or to an earlier one of the file) is not added again.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Image, Region, Task
from skelex_desktop.core.domain import LabelSource, TaskKind
from skelex_desktop.core.names import InvalidName, check_name, shown
from skelex_desktop.core.progress import Progress, check
from skelex_desktop.core.review.image_refs import PATH_SHOWN, ImageRefs
from skelex_desktop.core.review.label_import import (
    IMAGE_COLUMNS,
    MAX_REPORTED_ERRORS,
    CsvLines,
    FileProblem,
    csv_problem,
    image_reference,
)
from skelex_desktop.core.review.labels import LabelError
from skelex_desktop.core.review.regions import Box, store_region

BOX_COLUMNS = ("x0", "y0", "x1", "y1")
HUMAN = LabelSource.HUMAN.value
MAX_JSON_BYTES = 512 << 20  # a larger COCO file is refused unread


@dataclass
class BoxImportResult:
    """Boxes stored (none when `errors` is not empty), boxes already stored, and the reasons
    (the first `MAX_REPORTED_ERRORS`) of `invalid` bad rows or annotations."""

    imported: int
    present: int
    errors: list[str]
    invalid: int = 0


@dataclass
class _Box:
    """One box of the file before it is checked against its image."""

    where: str  # "line 4", "annotation 2 (id 17)"
    image_id: int | None
    ref: str
    task: str
    box: Box
    reader: str
    size: tuple[int, int] | None = None  # (width, height) the file gives its image (COCO)


@dataclass
class _Run:
    """What one import has read: boxes, errors, the schema's tasks, the name mapping."""

    names: dict[str, str]
    default_reader: str
    tasks: dict[str, Task] = field(default_factory=dict)
    boxes: list[_Box] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    invalid: int = 0

    def error(self, where: str, reason: str) -> None:
        self.invalid += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(f"{where}: {reason}")

    def task(self, name: str) -> Task:
        """The region task a file's task or category name stands for."""
        target = self.names.get(name, name)
        task = self.tasks.get(target)
        mapped = f" (mapped from {shown(name)})" if target != name else ""
        if task is None:
            raise LabelError(
                f"unknown task {shown(target)}{mapped}; `skelex-desktop task add NAME --kind "
                "region` adds a region task, `--map NAME=TASK` maps a name to one"
            )
        if task.kind != TaskKind.REGION:
            raise LabelError(
                f"task {shown(target)}{mapped} is a {task.kind} task, not a region task: boxes "
                "belong to a region task (`task add NAME --kind region`, `--map NAME=TASK`)"
            )
        return task

    def reader(self, raw: str) -> str:
        if not raw.strip():
            return self.default_reader
        try:
            return check_name(raw)
        except InvalidName as exc:
            raise LabelError(f"{exc}; correct the reader column") from exc


def holds_boxes(path: Path) -> bool:
    """Whether `path` is a box file: a `.json` file, or a CSV whose header names x0..y1."""
    if path.suffix.lower() == ".json":
        return True
    try:
        with path.open("rb") as handle:
            first = handle.readline(1 << 16).decode("utf-8-sig", errors="replace")
    except OSError:
        return False  # the label import reports the file
    return set(BOX_COLUMNS) <= {name.strip() for name in next(csv.reader([first]), [])}


def import_boxes(
    db: Database,
    path: Path,
    reader: str,
    names: dict[str, str] | None = None,
    progress: Progress | None = None,
    base: Path | None = None,
) -> BoxImportResult:
    """Import the boxes of `path` (COCO JSON when it ends in .json, else a box CSV) in one
    transaction; relative image paths are relative to `base` (default: the file's folder)."""
    try:
        run = _Run(dict(names or {}), check_name(reader))
    except InvalidName as exc:
        raise LabelError(f"{exc}; set another reader (--reader or settings.json)") from exc
    with db.write() as session:
        run.tasks = {task.name: task for task in session.scalars(select(Task))}
        if path.suffix.lower() == ".json":
            _read_coco(path, run)
        else:
            _read_csv(path, run)
        _resolve(session, run, ImageRefs(session, base or path.parent))
        if run.invalid:
            return BoxImportResult(0, 0, run.errors, run.invalid)
        imported, present = _store(session, run, path, progress)
    return BoxImportResult(imported, present, [])


def _read_csv(path: Path, run: _Run) -> None:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise LabelError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with handle:
        lines = CsvLines(handle)
        rows = csv.reader(lines, strict=True)
        try:
            header = [name.strip() for name in next(rows, None) or []]
        except (FileProblem, csv.Error) as exc:
            problem = exc if isinstance(exc, FileProblem) else csv_problem(exc, 1, lines)
            raise LabelError(f"{path}: {problem}; nothing was imported") from exc
        needed = {"task", *BOX_COLUMNS}
        if not needed <= set(header) or not set(header) & set(IMAGE_COLUMNS):
            raise LabelError(
                f"{path}: a box CSV needs columns task, {', '.join(BOX_COLUMNS)} and one of "
                f"{', '.join(IMAGE_COLUMNS)}; found {', '.join(shown(n) for n in header)}; "
                "correct the first line"
            )
        at = {name: i for i, name in reversed(list(enumerate(header)))}
        width = len(header)
        at = {n: at.get(n, width) for n in (*IMAGE_COLUMNS, *needed, "reader")}
        for line, fields in _csv_rows(rows, lines, run):
            if not fields:
                continue
            if len(fields) > width and any(extra.strip() for extra in fields[width:]):
                run.error(f"line {line}", f"has {len(fields)} fields where the header has {width}")
                continue
            fields = fields[:width] + [""] * (width + 1 - min(len(fields), width))
            try:
                image_id, ref = image_reference(fields, at)
                task = run.task(fields[at["task"]].strip())
                box = _checked_box(*(_number(c, fields[at[c]]) for c in BOX_COLUMNS))
                who = run.reader(fields[at["reader"]])
            except LabelError as exc:
                run.error(f"line {line}", str(exc))
                continue
            run.boxes.append(_Box(f"line {line}", image_id, ref, task.name, box, who))


def _csv_rows(
    rows: Iterator[list[str]], lines: CsvLines, run: _Run
) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each record; a problem that stops reading becomes an error."""
    while True:
        start = lines.number + 1
        try:
            fields = next(rows, None)
        except FileProblem as exc:
            run.error("reading stopped", str(exc))
            return
        except csv.Error as exc:
            run.error("reading stopped", str(csv_problem(exc, start, lines)))
            return
        if fields is None:
            return
        yield start, fields


def _number(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise LabelError(f"{name} {shown(raw.strip())} is not a number of pixels")
    return value


def _checked_box(x0: float, y0: float, x1: float, y1: float) -> Box:
    if not (x0 < x1 and y0 < y1):
        raise LabelError(
            f"box x0={x0:g}, y0={y0:g}, x1={x1:g}, y1={y1:g} is empty or inverted: x0 < x1 "
            "and y0 < y1 are needed (x1, y1: the far corner, not a width and height)"
        )
    return Box(x0, y0, x1, y1)


def _read_coco(path: Path, run: _Run) -> None:
    """The boxes of a COCO detection file; each bad image, category or annotation an error."""
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            raise LabelError(
                f"{path}: larger than {MAX_JSON_BYTES >> 20} MiB; split it into smaller files"
            )
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise LabelError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelError(f"{path}: not a COCO JSON file ({exc}); nothing was imported") from exc
    if not isinstance(data, dict) or not all(
        isinstance(data.get(key), list) for key in ("images", "annotations", "categories")
    ):
        raise LabelError(
            f"{path}: not a COCO detection file: needs lists 'images', 'annotations' and "
            "'categories'; nothing was imported"
        )
    images: dict[Any, dict[str, Any]] = {}
    for k, image in enumerate(data["images"], start=1):
        if (
            not isinstance(image, dict)
            or "id" not in image
            or not isinstance(image.get("file_name"), str)
        ):
            run.error(f"image {k}", "needs an 'id' and a 'file_name'")
        elif _hashable(image.get("id")) in images:
            run.error(f"image {k}", f"id {shown(str(image.get('id')))} is given twice")
        else:
            images[_hashable(image.get("id"))] = image
    categories: dict[Any, str] = {}
    for k, category in enumerate(data["categories"], start=1):
        if not isinstance(category, dict) or not isinstance(category.get("name"), str):
            run.error(f"category {k}", "needs an 'id' and a 'name'")
            continue
        categories[_hashable(category.get("id"))] = category["name"]
    for k, annotation in enumerate(data["annotations"], start=1):
        where = f"annotation {k}"
        if isinstance(annotation, dict) and "id" in annotation:
            where += f" (id {shown(str(annotation['id']))})"
        try:
            run.boxes.append(_coco_box(where, annotation, images, categories, run))
        except LabelError as exc:
            run.error(where, str(exc))


def _coco_box(
    where: str,
    annotation: Any,
    images: dict[Any, dict[str, Any]],
    categories: dict[Any, str],
    run: _Run,
) -> _Box:
    if not isinstance(annotation, dict):
        raise LabelError("not an object")
    image = images.get(_hashable(annotation.get("image_id")))
    if image is None:
        raise LabelError(f"image_id {shown(str(annotation.get('image_id')))} is not in 'images'")
    name = categories.get(_hashable(annotation.get("category_id")))
    if name is None:
        category = shown(str(annotation.get("category_id")))
        raise LabelError(f"category_id {category} is not in 'categories'")
    task = run.task(name)
    bbox = annotation.get("bbox")
    if not (
        isinstance(bbox, list)
        and len(bbox) == 4
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox)
        and all(math.isfinite(v) for v in bbox)
    ):
        raise LabelError(f"bbox {shown(json.dumps(bbox))} is not [x, y, width, height] in pixels")
    x, y, w, h = (float(v) for v in bbox)
    width, height = image.get("width"), image.get("height")
    size = (width, height) if isinstance(width, int) and isinstance(height, int) else None
    box = _checked_box(x, y, x + w, y + h)
    return _Box(where, None, image["file_name"].strip(), task.name, box, run.default_reader, size)


def _hashable(value: Any) -> Any:
    return value if isinstance(value, int | str) and not isinstance(value, bool) else repr(value)


def _resolve(session: Session, run: _Run, refs: ImageRefs) -> None:
    """Fill each box's image id and check it against its image: a box naming no image, or
    not inside its image, becomes an error."""
    found, reasons = refs.resolve({b.ref for b in run.boxes if b.image_id is None})
    ids = {b.image_id for b in run.boxes if b.image_id is not None} | set(found.values())
    sizes = {
        image_id: (cols, rows)
        for image_id, cols, rows in session.execute(
            select(Image.id, Image.cols, Image.rows).where(Image.id.in_(ids))
        )
    }
    valid = []
    for item in run.boxes:
        if item.image_id is None:
            item.image_id = found.get(item.ref)
        if item.image_id is None:
            run.error(item.where, reasons[item.ref])
            continue
        if item.image_id not in sizes:
            run.error(item.where, f"no image with id {item.image_id}; `skelex-desktop worklist`")
            continue
        width, height = sizes[item.image_id]
        if item.size is not None and item.size != (width, height):
            run.error(
                item.where,
                f"the file gives image {shown(item.ref, PATH_SHOWN)} as {item.size[0]}x{item.size[1]} pixels, "
                f"the imported image is {width}x{height}: boxes must be in full-resolution "
                "pixels of the imported image",
            )
            continue
        b = item.box
        if b.x0 < 0 or b.y0 < 0 or b.x1 > width or b.y1 > height:
            run.error(
                item.where,
                f"box x0={b.x0:g}, y0={b.y0:g}, x1={b.x1:g}, y1={b.y1:g} is not inside the image "
                f"({width}x{height} pixels: 0 <= x <= {width}, 0 <= y <= {height})",
            )
            continue
        valid.append(item)
    run.boxes = valid


def _store(session: Session, run: _Run, path: Path, progress: Progress | None) -> tuple[int, int]:
    """Store every checked box not already there; (stored, already there)."""
    current = select(Region.image_id, Region.task_id, Region.geometry).where(
        Region.image_id.in_({b.image_id for b in run.boxes}), Region.deleted_at.is_(None)
    )
    seen = {
        (image_id, task_id, Box.from_geometry(geometry))
        for image_id, task_id, geometry in session.execute(current)
        if (geometry or {}).get("type") == "box"
    }
    if progress is not None:
        progress.set_total(len(run.boxes))
        progress.set_status(f"importing boxes from {path.name}")
    stored = present = 0
    for item in run.boxes:
        check(progress)
        assert item.image_id is not None  # resolved by _resolve
        task = run.tasks[item.task]
        key = (item.image_id, task.id, item.box)
        if key in seen:
            present += 1
        else:
            seen.add(key)
            provenance = {"source": HUMAN, "imported_from": str(path), "at": item.where}
            store_region(session, item.image_id, task, item.box, item.reader, None, provenance)
            stored += 1
        if progress is not None:
            progress.advance(current=item.where)
    return stored, present
