"""`import_labels_csv`: a label CSV applied as one all-or-nothing, audited transaction.

The file is read once, as bytes, a chunk of rows at a time: each line is decoded as UTF-8 on its
own (a file in another encoding is named at its first bad line), parsed with `csv` in strict
mode (an unclosed quote is named at the line that opened it), and every row is checked with
set-based lookups (tasks once, images by id, SOP Instance UID or file path per chunk). While no
row has failed, each chunk's labels, the labels they supersede, the images they put in review
and one audit row per label are written in bulk inside the one transaction; after the first
invalid row nothing more is written, the rest is only checked, so that every bad line is
reported, and the transaction is rolled back. Memory is bounded by the chunk (and the import's
SQLite page cache, `IMPORT_CACHE_KIB`), not by the file.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from itertools import repeat
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Insert,
    Update,
    bindparam,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Image, Label, Series, Task, utcnow
from skelex_desktop.core.domain import ImageStatus, LabelSource, PredictionRelation, TaskKind
from skelex_desktop.core.names import InvalidName, check_name, shown
from skelex_desktop.core.progress import Progress, check
from skelex_desktop.core.review.image_refs import ImageRefs
from skelex_desktop.core.review.labels import LabelError, normalise_value

IMAGE_COLUMNS = ("image", "image_id", "file", "sop_instance_uid")
CHUNK_ROWS = 10_000  # rows checked, looked up and written together
IMPORT_CACHE_KIB = 65_536  # SQLite page cache during an import (bounded: 64 MiB)
MAX_REPORTED_ERRORS = 1000  # reasons kept; further invalid lines are only counted
SNIFF_BYTES = 8192  # the start of the file looked at for NUL bytes (binary, UTF-16)
MAX_LINE_BYTES = 1 << 20  # a longer line is not a label CSV (and is not read into memory)
MAX_FIELD_CHARS = 1024  # task, value and uncertain fields: longer ones are refused unread
TRUE_WORDS = frozenset({"1", "true", "yes"})
# what `labels.set_label` records of a label in its audit rows, in its order
AUDITED = ("value", "uncertain", "source", "reader", "prediction_id", "prediction_relation")
HUMAN = LabelSource.HUMAN.value
NO_RELATION = PredictionRelation.NONE.value
SAVE_AS_UTF8 = "save the file as UTF-8 ('CSV UTF-8' in Excel or LibreOffice) and import it again"


@dataclass
class LabelImportResult:
    """Labels stored (one per row, one per image of the study for a study-scoped task; none
    when `errors` is not empty) and per-line errors.

    `errors` holds the first `MAX_REPORTED_ERRORS` reasons; `invalid` counts every invalid line.
    """

    imported: int
    errors: list[str]
    invalid: int = 0


class FileProblem(Exception):
    """The file cannot be read on from this line; the message names the line and the way out."""


class _RollBack(Exception):
    """Raised inside the import transaction so that a failing file applies nothing."""


def import_labels_csv(
    db: Database,
    path: Path,
    reader: str,
    progress: Progress | None = None,
    base: Path | None = None,
) -> LabelImportResult:
    """Import rows `image` (or `file`, `sop_instance_uid`: a SOP Instance UID or a file path,
    see `image_refs`) or `image_id`, `task`, `value` [, `uncertain`, `reader`] as one
    transaction. Without `task` and `value` columns, each column named after a task holds
    that task's value (SynthMSK's `ground_truth.csv`); an empty cell is no decision.

    Every invalid row is reported with its line number and reason; if any row is invalid,
    nothing from the file is applied. A row of a study-scoped task is stored for every image of
    its image's study, as `labels.confirm_label` stores the window's decision. `progress` counts
    the file's lines; a cancel rolls back. Relative paths are relative to `base` (default:
    the file's folder).
    """
    try:
        default_reader = check_name(reader)
    except InvalidName as exc:
        raise LabelError(f"{exc}; set another reader (--reader or settings.json)") from exc
    try:
        total_lines = _count_lines(path)
        handle = path.open("rb")
    except OSError as exc:
        raise LabelError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if progress is not None:
        progress.set_total(max(0, total_lines - 1))
        progress.set_status(f"importing labels from {path.name}")
    run = _Run(default_reader, path, base or path.parent)
    try:
        with handle, db.write() as session, _page_cache(session):
            lines = CsvLines(handle)
            rows = csv.reader(lines, strict=True)
            run.start(session, _header(rows, lines, path))
            chunk: list[_Row] = []
            for row in _records(rows, lines, run):
                chunk.append(row)
                if len(chunk) >= CHUNK_ROWS:
                    run.process(session, chunk)
                    chunk = []
                    _advance(progress, lines)
            run.process(session, chunk)
            _advance(progress, lines)
            if run.invalid:
                raise _RollBack
    except _RollBack:
        return LabelImportResult(imported=0, errors=run.errors, invalid=run.invalid)
    return LabelImportResult(imported=run.written, errors=[], invalid=0)


@contextmanager
def _page_cache(session: Session) -> Iterator[None]:
    """SQLite: a page cache of `IMPORT_CACHE_KIB` for the import's transaction, then the
    connection's own size again. With SQLite's default 2 MiB, a transaction of many thousand
    labels spills its pages to the WAL and reads them back over and over (bench/labels.py)."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.dbapi_connection  # usable whatever the transaction's state
    assert driver is not None
    (before,) = driver.execute("PRAGMA cache_size").fetchone()
    driver.execute(f"PRAGMA cache_size=-{IMPORT_CACHE_KIB}")
    try:
        yield
    finally:
        driver.execute(f"PRAGMA cache_size={int(before)}")


def _count_lines(path: Path) -> int:
    """Lines in the file (the last may lack its newline), for the progress total."""
    count = 0
    last = b"\n"
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def _advance(progress: Progress | None, lines: CsvLines) -> None:
    """Report the data lines read since the last report; stop here when cancelled."""
    if progress is None:
        return
    check(progress)
    done = max(0, lines.number - 1)
    if done > lines.reported:
        progress.advance(done - lines.reported, current=f"line {lines.number}")
        lines.reported = done


class CsvLines:
    """The file's lines decoded one by one, counted; stops with a reason at a binary, UTF-16 or
    UTF-32 start, or at the first line that is not UTF-8 text or too long to be a label row."""

    def __init__(self, handle: io.BufferedReader) -> None:
        self._handle = handle
        self.number = 0  # lines read so far = the number of the last line read
        self.reported = 0  # data lines reported to the progress

    def __iter__(self) -> Iterator[str]:
        readline = self._handle.readline
        while raw := readline(MAX_LINE_BYTES + 1):
            self.number += 1
            if self.number == 1:
                raw = self._first_line(raw)
            if len(raw) > MAX_LINE_BYTES:
                raise FileProblem(
                    f"line {self.number}: longer than {MAX_LINE_BYTES} bytes; a label CSV has one "
                    "short row per line: check that this is the right file"
                )
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise FileProblem(
                    f"line {self.number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte "
                    f"{exc.start + 1} of the line; the file is probably Latin-1 or Windows-1252); "
                    f"{SAVE_AS_UTF8}"
                ) from exc

    def _first_line(self, raw: bytes) -> bytes:
        """The first line without its UTF-8 BOM; a UTF-16/32 or binary file is refused here,
        by its first bytes, before its first line is taken for Latin-1."""
        start = raw + self._handle.peek(SNIFF_BYTES)[:SNIFF_BYTES]
        if start.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
            raise FileProblem(f"line 1: the file is UTF-32 text; {SAVE_AS_UTF8}")
        if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            raise FileProblem(f"line 1: the file is UTF-16 text; {SAVE_AS_UTF8}")
        nul = start.find(b"\0")
        if nul >= 0 and _looks_binary(start):
            line = start.count(b"\n", 0, nul) + 1
            raise FileProblem(
                f"line {line}: holds NUL bytes (offset {nul} of the "
                f"file): this is a binary file or UTF-16 text, not a UTF-8 CSV; {SAVE_AS_UTF8}"
            )
        return raw.removeprefix(codecs.BOM_UTF8)


def _looks_binary(start: bytes) -> bool:
    """NUL bytes in the file's first bytes, and these are not UTF-8 text or one in ten is NUL
    (UTF-16 without a BOM). A stray NUL in a text row is left to the row checks, which refuse
    it where it matters (a reader name) or fail to match it (a task, a value, an image)."""
    try:
        start.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(start) - 4:  # not just a character cut at the end of the block
            return True
    return start.count(b"\0") * 10 >= len(start)


def csv_problem(exc: csv.Error, start: int, lines: CsvLines) -> FileProblem:
    """A clear reason for a csv module error in the record that starts on line `start`."""
    text = str(exc)
    if "field larger than field limit" in text:
        return FileProblem(
            f"line {start}: a field runs on for more than {csv.field_size_limit()} characters "
            f"(to line {lines.number}): a quote opened on line {start} is probably never closed; "
            "close it, or check that this is a label CSV"
        )
    if "unexpected end of data" in text:
        return FileProblem(
            f"line {start}: the quote opened on this line is never closed (the field runs to the "
            "end of the file); close the quote or remove it"
        )
    if "expected after" in text:
        return FileProblem(
            f"line {lines.number}: a quote in the middle of a field ({text}); quote the whole "
            'field and double the quotes inside it ("a ""b"" c")'
        )
    return FileProblem(f"line {start}: not valid CSV ({text})")


def _header(rows: Iterator[list[str]], lines: CsvLines, path: Path) -> list[str]:
    try:
        header = next(rows, None)
    except FileProblem as exc:
        raise LabelError(f"{path}: {exc}; nothing was imported") from exc
    except csv.Error as exc:
        raise LabelError(f"{path}: {csv_problem(exc, 1, lines)}; nothing was imported") from exc
    return [name.strip() for name in header or []]


def image_reference(fields: list[str], at: dict[str, int]) -> tuple[int | None, str]:
    """(image id, "") or (None, reference) of a row: `fields[at[column]]` for each of
    IMAGE_COLUMNS (an absent column's index holds "")."""
    given_id = fields[at["image_id"]].strip()
    if given_id:
        if given_id.isascii() and given_id.isdigit() and 0 < int(given_id) < 2**63:
            return int(given_id), ""
        raise LabelError(
            f"image_id {shown(given_id)} is not an image id (a whole number); "
            "`skelex-desktop worklist` lists them"
        )
    ref = (fields[at["image"]] or fields[at["file"]] or fields[at["sop_instance_uid"]]).strip()
    if not ref:
        raise LabelError("no image given: fill the image (or image_id) column")
    return None, ref


@dataclass
class _Row:
    """A checked row: where its image and task are, what it stores."""

    line: int
    image_id: int | None  # given by id, or resolved from `ref` per chunk
    ref: str
    task_id: int
    task_name: str
    value: Any
    uncertain: bool
    reader: str


def _records(rows: Iterator[list[str]], lines: CsvLines, run: _Run) -> Iterator[_Row]:
    """Every row of the file that passes the per-row checks; the others become errors. A
    problem that stops reading (encoding, binary, an unclosed quote) ends the iteration."""
    while True:
        start = lines.number + 1
        try:
            fields = next(rows, None)
        except FileProblem as exc:
            run.stop(str(exc) + "; reading stopped here")
            return
        except csv.Error as exc:
            run.stop(f"{csv_problem(exc, start, lines)}; reading stopped here")
            return
        if fields is None:
            return
        if not fields:
            continue  # a blank line
        if lines.number != start:
            run.error(
                start,
                f"a quoted field runs over lines {start} to {lines.number}; a quote is probably "
                "not closed: close it, or remove the line break inside the quotes",
            )
            continue
        yield from run.check(start, fields)


@dataclass
class _Run:
    """The state of one import: the schema, caches of checked values, errors and counts.

    `_wide`: (column index, task) of each task column of a file without task and value
    columns; empty for a file of one label per row."""

    default_reader: str
    path: Path
    base: Path  # the folder relative image paths are relative to
    errors: list[str] = field(default_factory=list)
    invalid: int = 0
    written: int = 0
    _at: dict[str, int] = field(default_factory=dict)  # column -> index; absent: _width
    _width: int = 0
    _tasks: dict[str, Task] = field(default_factory=dict)
    _values: dict[tuple[int, str, bool], Any] = field(default_factory=dict)
    _readers: set[str] = field(default_factory=set)
    _pending: list[tuple[int, str]] = field(default_factory=list)
    _wide: list[tuple[int, Task]] = field(default_factory=list)
    _refs: ImageRefs | None = None

    def start(self, session: Session, header: list[str]) -> None:
        """Take the columns of `header`; a header naming no image or no label is refused."""
        self._width = len(header)
        first = {name: i for i, name in reversed(list(enumerate(header)))}
        columns = (*IMAGE_COLUMNS, "task", "value", "uncertain", "reader")
        self._at = {name: first.get(name, self._width) for name in columns}
        self._tasks = {task.name: task for task in session.scalars(select(Task))}
        self._readers = {self.default_reader}
        self._refs = ImageRefs(session, self.base)
        if not {"task", "value"} <= first.keys():
            self._wide = [(i, self._tasks[n]) for n, i in first.items() if n in self._tasks]
            self._wide.sort(key=lambda column: column[0])
        boxes = [task.name for _i, task in self._wide if task.kind == TaskKind.REGION]
        if boxes:
            raise LabelError(
                f"{self.path}: column {shown(boxes[0])} is a region task: its boxes go in a box "
                "file (columns image, task, x0, y0, x1, y1, or COCO JSON); remove the column"
            )
        if not first.keys() & set(IMAGE_COLUMNS) or not (
            self._wide or {"task", "value"} <= first.keys()
        ):
            found = ", ".join(shown(n) for n in header) or "none"
            raise LabelError(
                f"{self.path}: needs columns task, value and one of {', '.join(IMAGE_COLUMNS)} "
                f"(or, instead of task and value, one column per task named as the task: "
                f"`skelex-desktop task list`); found {found}; correct the first line"
            )

    def error(self, line: int, reason: str) -> None:
        """Line `line` is invalid; its reason is reported in line order (`flush_errors`)."""
        self.invalid += 1
        self._pending.append((line, f"line {line}: {reason}"))

    def stop(self, text: str) -> None:
        """A problem that ends the reading of the file, reported after every earlier line."""
        self.invalid += 1
        self._pending.append((1 << 62, text))
        self.flush_errors()

    def flush_errors(self) -> None:
        room = MAX_REPORTED_ERRORS - len(self.errors)
        self.errors.extend(text for _line, text in sorted(self._pending)[: max(0, room)])
        self._pending.clear()

    def check(self, line: int, fields: list[str]) -> list[_Row]:
        """The labels of the row to store, or none after recording why line `line` cannot be
        stored."""
        try:
            if self._wide:
                return self._check_wide(line, fields)
            return [self._check(line, fields)]
        except LabelError as exc:
            self.error(line, str(exc))
            return []

    def _fields(self, fields: list[str]) -> list[str]:
        """The row's fields, one per column of the header and one "" for absent columns."""
        width = self._width
        if len(fields) > width and any(extra.strip() for extra in fields[width:]):
            raise LabelError(
                f"has {len(fields)} fields where the header has {width}; "
                'quote values that contain commas ("a, b")'
            )
        del fields[width:]
        fields.extend([""] * (width + 1 - len(fields)))
        return fields

    def _check_wide(self, line: int, fields: list[str]) -> list[_Row]:
        """One label per task column with a value (an empty cell is no decision)."""
        fields = self._fields(fields)
        filled = [(task, fields[i]) for i, task in self._wide if fields[i].strip()]
        if not filled:
            return []
        uncertain = fields[self._at["uncertain"]].strip().lower() in TRUE_WORDS
        image_id, ref = image_reference(fields, self._at)
        reader = self._reader(fields[self._at["reader"]])
        out = []
        for task, raw in filled:
            if len(raw) > MAX_FIELD_CHARS:
                raise LabelError(
                    f"the {task.name} field is {len(raw)} characters long (at most "
                    f"{MAX_FIELD_CHARS}); check that this is a label CSV"
                )
            try:
                value = self._value(task, raw, uncertain)
            except LabelError as exc:
                raise LabelError(f"column {task.name}: {exc}") from exc
            out.append(_Row(line, image_id, ref, task.id, task.name, value, uncertain, reader))
        return out

    def _check(self, line: int, fields: list[str]) -> _Row:
        # a short row's missing fields, and the columns the header lacks, read as ""
        fields = self._fields(fields)
        at = self._at
        task_name, raw_value = fields[at["task"]], fields[at["value"]]
        raw_uncertain = fields[at["uncertain"]]
        for name, given in (
            ("task", task_name),
            ("value", raw_value),
            ("uncertain", raw_uncertain),
        ):
            if len(given) > MAX_FIELD_CHARS:
                raise LabelError(
                    f"the {name} field is {len(given)} characters long (at most "
                    f"{MAX_FIELD_CHARS}); check that this is a label CSV"
                )
        image_id, ref = image_reference(fields, self._at)
        task = self._tasks.get(task_name.strip())
        if task is None:
            raise LabelError(
                f"unknown task {shown(task_name.strip())}; `skelex-desktop task list` shows the "
                "tasks, `task add` adds one"
            )
        uncertain = raw_uncertain.strip().lower() in TRUE_WORDS
        value = self._value(task, raw_value, uncertain)
        reader = self._reader(fields[at["reader"]])
        return _Row(line, image_id, ref, task.id, task.name, value, uncertain, reader)

    def _value(self, task: Task, raw: str, uncertain: bool) -> Any:
        """The stored value (what `set_label` stores), cached per task and text."""
        key = (task.id, raw, uncertain)
        if key in self._values:
            stored = self._values[key]
        else:
            try:
                stored = None if uncertain and not raw else normalise_value(task, raw)
            except LabelError as exc:
                stored = exc
            if len(self._values) < 10_000:
                self._values[key] = stored
        if isinstance(stored, LabelError):
            raise LabelError(str(stored))
        return stored

    def _reader(self, raw: str) -> str:
        if raw in self._readers:
            return raw
        if not raw.strip():
            return self.default_reader
        try:
            name = check_name(raw)
        except InvalidName as exc:
            raise LabelError(f"{exc}; correct the reader column") from exc
        if name == raw and len(self._readers) < 10_000:
            self._readers.add(raw)
        return name

    def process(self, session: Session, chunk: list[_Row]) -> None:
        """Resolve the chunk's images; write it while the file has no invalid row."""
        statuses = self._resolve(session, chunk) if chunk else {}
        self.flush_errors()
        if self.invalid or not chunk:
            return
        chunk = self._whole_studies(session, chunk, statuses)
        _write(session, chunk, statuses)
        self.written += len(chunk)

    def _whole_studies(
        self, session: Session, chunk: list[_Row], statuses: dict[int, tuple[str, str]]
    ) -> list[_Row]:
        """The chunk with each row of a study-scoped task followed by the same decision for
        the other images of its image's study, in id order (as `labels.confirm_label` stores
        it); `statuses` gets those images too."""
        study_tasks = {task.id for task in self._tasks.values() if task.scope == "study"}
        named = {row.image_id for row in chunk if row.task_id in study_tasks}
        if not named:
            return chunk
        studies = (
            select(Image.id, Series.study_id)
            .join(Series, Image.series_id == Series.id)
            .where(Image.id.in_(named))
        )
        study_of = {image_id: study_id for image_id, study_id in session.execute(studies)}
        members: dict[int, list[int]] = {}
        others = (
            select(Image.id, Series.study_id, Image.status, Image.reader)
            .join(Series, Image.series_id == Series.id)
            .where(Series.study_id.in_(set(study_of.values())))
            .order_by(Image.id)
        )
        for image_id, study_id, status, reader in session.execute(others):
            members.setdefault(study_id, []).append(image_id)
            statuses[image_id] = (status, reader)
        expanded = []
        for row in chunk:
            expanded.append(row)
            if row.task_id in study_tasks:
                assert row.image_id is not None  # resolved by _resolve
                expanded += [
                    replace(row, image_id=other)
                    for other in members[study_of[row.image_id]]
                    if other != row.image_id
                ]
        return expanded

    def _resolve(self, session: Session, chunk: list[_Row]) -> dict[int, tuple[str, str]]:
        """Fill each row's image id; rows naming no image become errors. Returns the status and
        reader of every image the chunk names."""
        assert self._refs is not None  # set by start
        by_ref, reasons = self._refs.resolve({row.ref for row in chunk if row.image_id is None})
        ids = {row.image_id for row in chunk if row.image_id is not None} | set(by_ref.values())
        statuses: dict[int, tuple[str, str]] = {}
        if ids:
            by_id = select(Image.id, Image.status, Image.reader).where(Image.id.in_(ids))
            for image_id, status, reader in session.execute(by_id):
                statuses[image_id] = (status, reader)
        valid = []
        reported: set[int] = set()  # a row of several labels (wide) is one invalid line
        for row in chunk:
            if row.image_id is None and row.ref in by_ref:
                row.image_id = by_ref[row.ref]
            if row.line in reported:
                continue
            if row.image_id is None:
                reported.add(row.line)
                self.error(row.line, reasons[row.ref])
            elif row.image_id not in statuses:
                reported.add(row.line)
                self.error(
                    row.line,
                    f"no image with id {row.image_id}; `skelex-desktop worklist` lists the images",
                )
            else:
                valid.append(row)
        chunk[:] = valid
        return statuses


def _write(session: Session, chunk: list[_Row], statuses: dict[int, tuple[str, str]]) -> None:
    """Store a checked chunk as `set_label` stores one decision: a new current label per row,
    superseding the current one (an earlier row of the file included), the image in review,
    and an audit row with the label before and after. Core statements on the session's
    connection, each an executemany (the ORM's per-row bookkeeping is what made this slow);
    on SQLite the audit rows are built by SQLite from the rows just written."""
    tables = Label.metadata.tables
    labels, images = tables["labels"], tables["images"]
    connection = session.connection()
    in_sql = connection.dialect.name == "sqlite"
    previous = _current_labels(connection, chunk, with_values=not in_sql)
    now = utcnow()
    new_ids = _insert_labels(
        connection,
        insert(labels).values(
            source=HUMAN, prediction_id=None, prediction_relation=NO_RELATION, created_at=now
        ),
        [
            {
                "image_id": row.image_id,
                "task_id": row.task_id,
                "value": row.value,
                "uncertain": row.uncertain,
                "reader": row.reader,
            }
            for row in chunk
        ],
    )
    superseded: list[dict[str, int]] = []
    audits: list[dict[str, Any]] = []
    in_review: dict[int, str] = {}
    for row, label_id in zip(chunk, new_ids, strict=True):
        assert row.image_id is not None  # resolved by _resolve
        key = (row.image_id, row.task_id)
        before = previous.get(key)
        if before is not None:
            superseded.append({"old": before[0], "new": label_id})
        stored = (row.value, row.uncertain, HUMAN, row.reader, None, NO_RELATION)
        after = None if in_sql else dict(zip(AUDITED, stored, strict=True))
        previous[key] = (label_id, after)
        if after is not None:
            audits.append(
                {
                    "at": now,
                    "who": row.reader,
                    "action": "label.set",
                    "entity": "label",
                    "entity_id": label_id,
                    "before": before[1] if before is not None else None,
                    "after": after | {"image_id": row.image_id, "task": row.task_name},
                }
            )
        if statuses[row.image_id][0] != ImageStatus.CONFIRMED:
            in_review[row.image_id] = row.reader  # the last row's reader, as one by one
    if superseded:
        _executemany(
            connection,
            update(labels)
            .where(labels.c.id == bindparam("old"))
            .values(superseded_by=bindparam("new")),
            sorted(superseded, key=lambda change: change["old"]),
        )
    changed = {
        image_id: who
        for image_id, who in in_review.items()
        if statuses[image_id] != (ImageStatus.IN_REVIEW.value, who)
    }
    if changed:
        _executemany(
            connection,
            update(images)
            .where(images.c.id == bindparam("image"))
            .values(status=ImageStatus.IN_REVIEW.value, reader=bindparam("who")),
            [{"image": image_id, "who": who} for image_id, who in sorted(changed.items())],
        )
    if in_sql:
        connection.execute(SQLITE_AUDIT_ROWS, {"at": now, "first": new_ids[0], "last": new_ids[-1]})
    else:
        connection.execute(insert(tables["audit_events"]), audits)


def _current_labels(
    connection: Connection, chunk: list[_Row], with_values: bool
) -> dict[tuple[int, int], tuple[int, dict[str, Any] | None]]:
    """(image, task) -> (id, audited fields or None) of the current label of each pair the
    chunk names."""
    labels = Label.metadata.tables["labels"]
    pairs = {(row.image_id, row.task_id) for row in chunk}
    columns = [labels.c.image_id, labels.c.task_id, labels.c.id]
    if with_values:
        columns += [labels.c[name] for name in AUDITED]
    current = select(*columns).where(
        labels.c.image_id.in_({image_id for image_id, _task in pairs}),
        labels.c.task_id.in_({task_id for _image, task_id in pairs}),
        labels.c.superseded_by.is_(None),
        labels.c.retracted_at.is_(None),
    )
    found: dict[tuple[int, int], tuple[int, dict[str, Any] | None]] = {}
    for image_id, task_id, label_id, *values in connection.execute(current).all():
        if (image_id, task_id) in pairs:
            audited = dict(zip(AUDITED, values, strict=True)) if with_values else None
            found[(image_id, task_id)] = (label_id, audited)
    return found


def _sqlite_label_json(alias: str) -> str:
    """SQLite's json_object of what `labels.set_label` audits of a label row (AUDITED)."""
    return (
        f"json_object('value', json({alias}.value), "
        f"'uncertain', json(CASE WHEN {alias}.uncertain THEN 'true' ELSE 'false' END), "
        f"'source', {alias}.source, 'reader', {alias}.reader, "
        f"'prediction_id', {alias}.prediction_id, "
        f"'prediction_relation', {alias}.prediction_relation"
    )


# The audit rows of the labels with ids first..last, in id order, as `set_label` writes them:
# `before` the label each one superseded (JSON null when none), `after` the label with its image
# and task. SQLite builds the JSON (the same values as json.dumps, written compactly), which
# spares reading the superseded labels' values into Python and writing them back.
SQLITE_AUDIT_ROWS = text(
    'INSERT INTO audit_events (at, who, action, entity, entity_id, "before", "after") '
    "SELECT :at, new.reader, 'label.set', 'label', new.id, "
    f"coalesce((SELECT {_sqlite_label_json('old')}) FROM labels AS old "
    "WHERE old.image_id = new.image_id AND old.task_id = new.task_id "
    "AND old.superseded_by = new.id), 'null'), "
    f"{_sqlite_label_json('new')}, 'image_id', new.image_id, 'task', tasks.name) "
    "FROM labels AS new JOIN tasks ON tasks.id = new.task_id "
    "WHERE new.id BETWEEN :first AND :last ORDER BY new.id"
).bindparams(bindparam("at", type_=DateTime(timezone=True)))


def _insert_labels(
    connection: Connection, statement: Insert, rows: list[dict[str, Any]]
) -> list[int]:
    """Run the labels INSERT `statement` once per row, in one executemany; the new ids, in order.

    SQLite: the ids are given here, after the largest one: the import's transaction holds the
    database's one write lock from its start (`Database.write` begins IMMEDIATE), so no other
    writer can take them. (SQLAlchemy would run one INSERT per row to return ids in order on
    SQLite.) Other databases return them in order, in batches.
    """
    labels = Label.metadata.tables["labels"]
    if connection.dialect.name != "sqlite":
        returning = statement.returning(labels.c.id, sort_by_parameter_order=True)
        return list(connection.execute(returning, rows).scalars())
    first = (connection.scalar(select(func.max(labels.c.id))) or 0) + 1
    ids = list(range(first, first + len(rows)))
    for row, label_id in zip(rows, ids, strict=True):
        row["id"] = label_id
    _executemany(connection, statement, rows)
    return ids


def _executemany(
    connection: Connection, statement: Insert | Update, rows: list[dict[str, Any]]
) -> None:
    """Run `statement` once per row (all rows have the same keys) as one executemany.

    On SQLite at the driver level: SQLAlchemy's executemany builds and processes every
    parameter of every row in Python, which cost more than SQLite's own work (bench/labels.py).
    Here the statement is compiled once, and each column's bind processor (JSON, DATETIME,
    BOOLEAN: the functions SQLAlchemy itself would call) runs once per distinct value, or once
    per row for dicts. Elsewhere a Core executemany.
    """
    if not rows:
        return
    dialect = connection.dialect
    if dialect.name != "sqlite":
        connection.execute(statement, rows)
        return
    compiled = statement.compile(dialect=dialect, column_keys=list(rows[0]))
    columns: list[Iterable[Any]] = []
    for name in compiled.positiontup or ():
        bind = compiled.binds[name]
        processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if name not in rows[0]:  # a value of the statement itself
            value = bind.effective_value
            columns.append(repeat(value if processor is None else processor(value), len(rows)))
            continue
        values = [row[name] for row in rows]
        columns.append(values if processor is None else _processed(values, processor))
    connection.exec_driver_sql(compiled.string, list(zip(*columns, strict=True)))


def _processed(values: list[Any], processor: Callable[[Any], Any]) -> list[Any]:
    """`processor` applied to each value, once per distinct one (dicts: once each)."""
    sent: dict[tuple[type, Any], Any] = {}
    out = []
    for value in values:
        if isinstance(value, dict | list):
            out.append(processor(value))
            continue
        key = (type(value), value)  # 1 and 1.0 (and True) are equal keys otherwise
        if key not in sent:
            sent[key] = processor(value)
        out.append(sent[key])
    return out
