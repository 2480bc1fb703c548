"""The review session: what a reader has open and the rules of reading, without Qt.

It holds the current image, its task states and the task cursor, turns a digit into a task's
value, queues every decision on one serialized writer (`db.executor.SerialExecutor`) with an
undo/redo history, chooses the next unreviewed image and the images to prefetch. A front end
subscribes to its `ReviewEvent`s and redraws what each names (napari's ViewerModel and Anki's
OpChanges work the same way): the window is one such front end, a team reader could be another.

Writes leave the caller's thread at once; their results come back through the executor's
`deliver`, so in a window they are handled on the GUI thread, in tests on the writer thread.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.executor import SerialExecutor
from skelex_desktop.core.domain import Changes, ImageStatus, TaskKind
from skelex_desktop.core.review.commands import (
    AddMeasurement,
    AddRegion,
    Command,
    ConfirmImage,
    SetLabel,
)
from skelex_desktop.core.review.decisions import (
    ImageDetails,
    TaskState,
    image_details,
    task_states,
    undecided_required,
)
from skelex_desktop.core.review.measurements import MeasurementView, Point, list_measurements
from skelex_desktop.core.review.regions import Box, list_regions
from skelex_desktop.core.review.studies import Companion, companions

PREFETCH_AHEAD = 2
UNREVIEWED = frozenset({ImageStatus.NEW, ImageStatus.ANALYSED, ImageStatus.IN_REVIEW})


class WorklistEntry(Protocol):
    """What the session reads of a worklist row."""

    @property
    def image_id(self) -> int: ...

    @property
    def status(self) -> str: ...


class RowSource(Protocol):
    """The worklist in the order the reader sees it (a front end's table model)."""

    def row_at(self, row: int) -> WorklistEntry | None: ...


class EventKind(enum.StrEnum):
    OPENED = "opened"  # another image is current: redraw everything of it
    CHANGED = "changed"  # a write was stored: `changes` names what it touched
    CURSOR = "cursor"  # the current task moved
    HISTORY = "history"  # what undo / redo can do changed
    MESSAGE = "message"  # a line for the status bar
    ERROR = "error"  # a write or a rule failed: show it to the reader


@dataclass(frozen=True)
class ReviewEvent:
    """One thing that happened in the session."""

    kind: EventKind
    changes: Changes = field(default_factory=Changes)
    message: str = ""
    prefetch: tuple[ImageDetails, ...] = ()  # OPENED: the images to prepare next


Listener = Callable[[ReviewEvent], None]


def value_for(state: TaskState, index: int) -> Any:
    """The value class `index` stands for: the index itself for a binary task (0 no, 1 yes),
    else the class name."""
    if not 0 <= index < len(state.classes):
        raise IndexError(f"{state.title} has classes 0-{len(state.classes) - 1}")
    return index if state.kind == TaskKind.BINARY else state.classes[index]


def next_unreviewed_row(rows: RowSource, after: int) -> int | None:
    """The first row below `after` whose image still needs a reader."""
    row = after + 1
    while (entry := rows.row_at(row)) is not None:
        if entry.status in UNREVIEWED:
            return row
        row += 1
    return None


def prefetch_ids(rows: RowSource, row: int, ahead: int = PREFETCH_AHEAD) -> tuple[int, ...]:
    """The images of the `ahead` rows after `row` (prepared while the reader reads `row`)."""
    found = (rows.row_at(row + step) for step in range(1, ahead + 1))
    return tuple(entry.image_id for entry in found if entry is not None)


class ReviewSession:
    """One reader's review: current image, task cursor, decisions, history, navigation."""

    def __init__(
        self,
        db: Database,
        reader: str,
        rows: RowSource | None = None,
        executor: SerialExecutor | None = None,
    ) -> None:
        self.db = db
        self.reader = reader
        self.rows = rows
        self.executor = executor or SerialExecutor()
        self.current: ImageDetails | None = None
        self.row = -1
        self.tasks: list[TaskState] = []
        self.task_index = 0
        self._listeners: list[Listener] = []
        self._undo: list[Command] = []
        self._redo: list[Command] = []
        self._pending = 0
        self._lock = threading.RLock()

    # --- subscription ------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener` with every event; returns the function that unsubscribes it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _emit(self, kind: EventKind, **fields: Any) -> None:
        event = ReviewEvent(kind, **fields)
        for listener in list(self._listeners):
            listener(event)

    # --- what is open ------------------------------------------------------------------------
    def open_row(self, row: int) -> bool:
        """Open the image of worklist row `row`; False when there is no such row."""
        if self.rows is None or (entry := self.rows.row_at(row)) is None:
            return False
        self.row = row
        self.open(entry.image_id, prefetch_ids(self.rows, row))
        return True

    def open(self, image_id: int, prefetch: tuple[int, ...] = ()) -> None:
        """Make `image_id` current (its details and task states are read now); the OPENED
        event carries the details of the `prefetch` images."""
        self._read(image_id)
        with self.db.read() as session:
            ahead = tuple(image_details(session, i) for i in prefetch)
        self._emit(EventKind.OPENED, changes=Changes(images={image_id}), prefetch=ahead)

    def reload(self) -> None:
        """Read the current image's details and task states again (new predictions)."""
        if self.current is not None:
            self._read(self.current.image_id)
            self._emit(EventKind.CHANGED, changes=Changes(images={self.current.image_id}))

    def _read(self, image_id: int) -> None:
        with self.db.read() as session:
            self.current = image_details(session, image_id)
            self.tasks = task_states(session, image_id)
        self.task_index = min(self.task_index, max(len(self.tasks) - 1, 0))

    def companions(self, with_prior: bool = False) -> list[Companion]:
        """The images to show beside the current one: the other views of its study, and with
        `with_prior` the newest prior study's matching view first."""
        if self.current is None:
            return []
        with self.db.read() as session:
            return companions(session, self.current.image_id, with_prior)

    def regions(self) -> list[Box]:
        """The reader's box regions on the current image."""
        if self.current is None:
            return []
        with self.db.read() as session:
            return [box for _id, box in list_regions(session, self.current.image_id)]

    @property
    def current_task(self) -> TaskState | None:
        return self.tasks[self.task_index] if self.tasks else None

    def task_state(self, name: str) -> TaskState | None:
        return next((s for s in self.tasks if s.name == name), None)

    def step_task(self, step: int = 1) -> None:
        if self.tasks:
            self.task_index = (self.task_index + step) % len(self.tasks)
            self._emit(EventKind.CURSOR)

    def select_task(self, name: str) -> None:
        index = next((i for i, s in enumerate(self.tasks) if s.name == name), None)
        if index is not None and index != self.task_index:
            self.task_index = index
            self._emit(EventKind.CURSOR)

    # --- navigation --------------------------------------------------------------------------
    def step_image(self, step: int, from_row: int | None = None) -> bool:
        """Open the row `step` rows away from `from_row` (a front end's selected row; default
        the open one), when there is one."""
        start = self.row if from_row is None else from_row
        return start + step >= 0 and self.open_row(start + step)

    def advance(self) -> bool:
        """Open the next image below the current row that still needs a reader."""
        return self._open_unreviewed_after(self.row, "No unreviewed image below this one")

    def start(self) -> bool:
        """Open the first image of the worklist that still needs a reader (at launch)."""
        return self._open_unreviewed_after(-1, "Every image of the worklist has been reviewed")

    def _open_unreviewed_after(self, row: int, none_left: str) -> bool:
        found = next_unreviewed_row(self.rows, row) if self.rows is not None else None
        if found is None:
            self._emit(EventKind.MESSAGE, message=none_left)
            return False
        return self.open_row(found)

    # --- decisions ---------------------------------------------------------------------------
    def choose(self, index: int) -> bool:
        """A digit: class `index` for the current task."""
        state = self.current_task
        if self.current is None or state is None:
            return False
        return self.set_value(state.name, index)

    def set_value(self, task: str, index: int) -> bool:
        """Class `index` for `task` of the current image (queued)."""
        state = self.task_state(task)
        if self.current is None or state is None:
            return False
        try:
            value = value_for(state, index)
        except IndexError as exc:
            self._emit(EventKind.MESSAGE, message=str(exc))
            return False
        self._push(self._label(self.current, state, value))
        return True

    def mark_uncertain(self) -> bool:
        """U: the current task is uncertain (queued)."""
        state = self.current_task
        if self.current is None or state is None:
            return False
        self._push(self._label(self.current, state, None, uncertain=True))
        return True

    def _label(
        self, image: ImageDetails, state: TaskState, value: Any, uncertain: bool = False
    ) -> SetLabel:
        return SetLabel(
            self.db,
            self.reader,
            image.image_id,
            state.name,
            value,
            uncertain=uncertain,
            prediction_id=state.prediction_id,
        )

    def confirm(self) -> bool:
        """Enter: accept the shown suggestions, confirm the image (queued), then move to the
        next unreviewed image. Not while a required task is undecided (the cursor moves to it
        and a message says why) or when nothing at all would be decided; the core refuses the
        same (`decisions.confirm_image`), also for decisions still on their way."""
        if self.current is None:
            return False
        deciding = self._deciding(self.current.image_id)
        missing = undecided_required(self.tasks, deciding)
        if missing:
            self.select_task(missing[0])
            titles = ", ".join(s.title for s in self.tasks if s.name in missing)
            self._emit(
                EventKind.MESSAGE,
                message=f"Not confirmed: {titles} must be decided first (a digit, or U)",
            )
            return False
        if not deciding and not any(s.decided or s.confirmable for s in self.tasks):
            self._emit(
                EventKind.MESSAGE,
                message="Not confirmed: no decision and no suggestion Enter accepts",
            )
            return False
        self._push(ConfirmImage(self.db, self.reader, self.current.image_id, self.current.status))
        self.advance()
        return True

    def measure(self, kind: str, points: list[Point]) -> bool:
        """A length (two points) or an angle (four: two lines) on the current image (queued)."""
        if self.current is None:
            return False
        self._push(AddMeasurement(self.db, self.reader, self.current.image_id, kind, points))
        return True

    def measurements(self) -> list[MeasurementView]:
        """The measurements on the current image."""
        if self.current is None:
            return []
        with self.db.read() as session:
            return list_measurements(session, self.current.image_id)

    def add_region(self, box: Box) -> bool:
        """A box region for the current task (queued)."""
        state = self.current_task
        if self.current is None or state is None:
            return False
        self._push(AddRegion(self.db, self.reader, self.current.image_id, state.name, box))
        return True

    def _deciding(self, image_id: int) -> set[str]:
        """Tasks of `image_id` whose decision is queued and not stored yet."""
        with self._lock:
            return {
                c.task
                for c in self._undo
                if isinstance(c, SetLabel)
                and c.image_id == image_id
                and not c.applied
                and not c.failed
            }

    # --- history -----------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return any(not c.failed for c in self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> bool:
        """Revert the newest decision still applied (queued behind its own write)."""
        with self._lock:
            while self._undo and self._undo[-1].failed:
                self._undo.pop()
            if not self._undo:
                return False
            command = self._undo.pop()
            self._redo.append(command)
        self._submit(command.run_revert, command, undo=True)
        return True

    def redo(self) -> bool:
        """Apply again the newest undone decision (queued)."""
        with self._lock:
            if not self._redo:
                return False
            command = self._redo.pop()
            command.failed = False
            self._undo.append(command)
        self._submit(command.run_apply, command, undo=False)
        return True

    def _push(self, command: Command) -> None:
        with self._lock:
            self._undo.append(command)
            self._redo.clear()
        self._submit(command.run_apply, command, undo=False)

    # --- the writer --------------------------------------------------------------------------
    @property
    def idle(self) -> bool:
        """No decision waiting to be stored or reported."""
        with self._lock:
            return self._pending == 0

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every queued decision was stored (and, where `deliver` runs at once,
        reported); False on timeout."""
        return self.executor.wait_idle(timeout)

    def _submit(self, work: Callable[[], Changes], command: Command, undo: bool) -> None:
        with self._lock:
            self._pending += 1
        self._emit(EventKind.HISTORY)
        self.executor.submit(
            work,
            on_done=self._stored,
            on_error=lambda exc: self._failed(command, undo, exc),
        )

    def _stored(self, changes: Changes) -> None:
        with self._lock:
            self._pending -= 1
        if self.current is not None and self.current.image_id in changes.images:
            self._read(self.current.image_id)
        self._emit(EventKind.CHANGED, changes=changes)
        self._emit(EventKind.HISTORY)

    def _failed(self, command: Command, undo: bool, exc: BaseException) -> None:
        with self._lock:
            self._pending -= 1
            if undo:  # still applied: it can be undone again, not redone
                if command in self._redo:
                    self._redo.remove(command)
                self._undo.append(command)
            elif command in self._undo:
                self._undo.remove(command)
        what = f"undo of {command.text}" if undo else command.text
        self._emit(EventKind.ERROR, message=f"{what} failed: {exc}")
        self._emit(EventKind.HISTORY)

    def close(self) -> None:
        """Store what is queued, then stop the writer."""
        self.executor.shutdown()
