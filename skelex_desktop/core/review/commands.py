"""Undoable review decisions: each `apply` and `revert` is one committed, audited core
transaction; a command keeps only the ids it needs to reverse itself.

They run on the session's serialized writer, in the order the reader made them, so an undo
pressed before its decision was stored still reverts the right rows (a command whose apply
failed reverts nothing).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.domain import Changes
from skelex_desktop.core.review.decisions import confirm_image, reopen_image
from skelex_desktop.core.review.labels import confirm_label, undo_label
from skelex_desktop.core.review.measurements import Point, add_measurement, delete_measurement
from skelex_desktop.core.review.regions import Box, add_region, delete_region


class Command(ABC):
    """A decision that can be applied and reverted; `text` names it in messages."""

    def __init__(self, text: str, db: Database, reader: str, image_id: int) -> None:
        self.text = text
        self.db = db
        self.reader = reader
        self.image_id = image_id
        self.applied = False
        self.failed = False

    @abstractmethod
    def apply(self) -> Changes:
        """Store the decision (one committed transaction)."""

    @abstractmethod
    def revert(self) -> Changes:
        """Undo what `apply` stored (one committed transaction)."""

    def run_apply(self) -> Changes:
        """Apply (on the writer thread); a failure marks the command failed and re-raises."""
        try:
            changes = self.apply()
        except Exception:
            self.failed = True
            raise
        self.applied = True
        return changes

    def run_revert(self) -> Changes:
        """Revert when applied (on the writer thread); nothing to do otherwise."""
        if not self.applied:
            return Changes()
        changes = self.revert()
        self.applied = False
        return changes


class SetLabel(Command):
    """One task of one image set by the reader (a digit, or U for uncertain)."""

    def __init__(
        self,
        db: Database,
        reader: str,
        image_id: int,
        task: str,
        value: Any,
        uncertain: bool = False,
        prediction_id: int | None = None,
    ) -> None:
        super().__init__(f"{task} = {'uncertain' if uncertain else value}", db, reader, image_id)
        self.task, self.value, self.uncertain = task, value, uncertain
        self.prediction_id = prediction_id
        self.label_ids: list[int] = []  # one, or one per image of the study (study scope)

    def apply(self) -> Changes:
        changes = confirm_label(
            self.db,
            self.image_id,
            self.task,
            self.value,
            self.reader,
            uncertain=self.uncertain,
            prediction_id=self.prediction_id,
        )
        self.label_ids = sorted(changes.labels)
        return changes

    @property
    def label_id(self) -> int | None:
        """The label of the decided image itself (stored first: the smallest id)."""
        return self.label_ids[0] if self.label_ids else None

    def revert(self) -> Changes:
        changes = Changes()
        for label_id in reversed(self.label_ids):
            changes.merge(undo_label(self.db, label_id, self.reader))
        return changes


class ConfirmImage(Command):
    """Enter: accept the shown suggestions and mark the image confirmed."""

    def __init__(self, db: Database, reader: str, image_id: int, status_before: str) -> None:
        super().__init__("confirm image", db, reader, image_id)
        self.status_before = status_before
        self.label_ids: list[int] = []

    def apply(self) -> Changes:
        changes = confirm_image(self.db, self.image_id, self.reader)
        self.label_ids = sorted(changes.labels)
        return changes

    def revert(self) -> Changes:
        changes = Changes()
        for label_id in reversed(self.label_ids):
            changes.merge(undo_label(self.db, label_id, self.reader))
        return changes.merge(reopen_image(self.db, self.image_id, self.reader, self.status_before))


class AddRegion(Command):
    """A box region drawn for a task."""

    def __init__(self, db: Database, reader: str, image_id: int, task: str, box: Box) -> None:
        super().__init__(f"box for {task}", db, reader, image_id)
        self.task, self.box = task, box
        self.region_id: int | None = None

    def apply(self) -> Changes:
        self.region_id, changes = add_region(
            self.db, self.image_id, self.task, self.box, self.reader
        )
        return changes

    def revert(self) -> Changes:
        assert self.region_id is not None
        return delete_region(self.db, self.region_id, self.reader)


class AddMeasurement(Command):
    """A length (two points) or an angle (two lines) drawn on the image."""

    def __init__(
        self, db: Database, reader: str, image_id: int, kind: str, points: list[Point]
    ) -> None:
        super().__init__(kind, db, reader, image_id)
        self.kind, self.points = kind, points
        self.measurement_id: int | None = None

    def apply(self) -> Changes:
        self.measurement_id, changes = add_measurement(
            self.db, self.image_id, self.kind, self.points, self.reader
        )
        return changes

    def revert(self) -> Changes:
        assert self.measurement_id is not None
        return delete_measurement(self.db, self.measurement_id, self.reader)
