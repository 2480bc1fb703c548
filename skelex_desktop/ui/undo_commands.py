"""Undo/redo of review decisions: QUndoCommands mapped onto core operations.

Every redo and undo is its own committed, audited core transaction; the undo stack holds only
the ids needed to reverse them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtGui import QUndoCommand

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.domain import Changes
from skelex_desktop.core.review.decisions import confirm_image, reopen_image
from skelex_desktop.core.review.labels import confirm_label, undo_label
from skelex_desktop.core.review.regions import Box, add_region, delete_region


@dataclass(frozen=True)
class CommandHooks:
    """What commands tell the window: what changed, and what failed."""

    refresh: Callable[[Changes], None]
    report_error: Callable[[str], None]


class CoreCommand(QUndoCommand):
    """Runs `apply`/`revert`; a failing first apply reports the error and drops the command."""

    def __init__(self, text: str, hooks: CommandHooks) -> None:
        super().__init__(text)
        self._hooks = hooks
        self._applied = False

    def apply(self) -> Changes:
        raise TypeError("subclasses define apply()")

    def revert(self) -> Changes:
        raise TypeError("subclasses define revert()")

    def redo(self) -> None:
        try:
            changes = self.apply()
        except Exception as exc:  # shown to the reader; nothing half-done stays on the stack
            self.setObsolete(True)
            self._hooks.report_error(f"{self.text()} failed: {exc}")
            return
        self._applied = True
        self._hooks.refresh(changes)

    def undo(self) -> None:
        if not self._applied:
            return
        try:
            changes = self.revert()
        except Exception as exc:
            self._hooks.report_error(f"undo of {self.text()} failed: {exc}")
            return
        self._applied = False
        self._hooks.refresh(changes)


class SetLabelCommand(CoreCommand):
    """Set one task of one image (a correction, or U for uncertain)."""

    def __init__(
        self,
        db: Database,
        hooks: CommandHooks,
        image_id: int,
        task: str,
        value: Any,
        reader: str,
        uncertain: bool = False,
        prediction_id: int | None = None,
    ) -> None:
        shown = "uncertain" if uncertain else value
        super().__init__(f"{task} = {shown}", hooks)
        self._args = (db, image_id, task, value, reader)
        self._uncertain = uncertain
        self._prediction_id = prediction_id
        self.label_id: int | None = None

    def apply(self) -> Changes:
        db, image_id, task, value, reader = self._args
        changes = confirm_label(
            db,
            image_id,
            task,
            value,
            reader,
            uncertain=self._uncertain,
            prediction_id=self._prediction_id,
        )
        (self.label_id,) = changes.labels
        return changes

    def revert(self) -> Changes:
        db, _image_id, _task, _value, reader = self._args
        assert self.label_id is not None
        return undo_label(db, self.label_id, reader)


class ConfirmImageCommand(CoreCommand):
    """Enter: confirm the shown suggestions and the image."""

    def __init__(
        self, db: Database, hooks: CommandHooks, image_id: int, reader: str, status_before: str
    ) -> None:
        super().__init__("confirm image", hooks)
        self._db = db
        self._image_id, self._reader, self._status_before = image_id, reader, status_before
        self.label_ids: list[int] = []

    def apply(self) -> Changes:
        changes = confirm_image(self._db, self._image_id, self._reader)
        self.label_ids = sorted(changes.labels)
        return changes

    def revert(self) -> Changes:
        changes = Changes()
        for label_id in reversed(self.label_ids):
            changes.merge(undo_label(self._db, label_id, self._reader))
        return changes.merge(
            reopen_image(self._db, self._image_id, self._reader, self._status_before)
        )


class AddRegionCommand(CoreCommand):
    """B + drag: a box region for the current task."""

    def __init__(
        self, db: Database, hooks: CommandHooks, image_id: int, task: str, box: Box, reader: str
    ) -> None:
        super().__init__(f"box for {task}", hooks)
        self._db = db
        self._image_id, self._task, self._box, self._reader = image_id, task, box, reader
        self.region_id: int | None = None

    def apply(self) -> Changes:
        self.region_id, changes = add_region(
            self._db, self._image_id, self._task, self._box, self._reader
        )
        return changes

    def revert(self) -> Changes:
        assert self.region_id is not None
        return delete_region(self._db, self.region_id, self._reader)
