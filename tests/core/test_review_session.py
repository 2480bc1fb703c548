"""The Qt-free review session: digit rules, queued writes in order, undo/redo, the advance rule,
prefetch and the events a front end redraws from. Real SQLite, no Qt."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from sqlalchemy import select

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.executor import SerialExecutor
from skelex_desktop.core.db.models import AuditEvent, Image, Label, Task
from skelex_desktop.core.domain import ImageStatus
from skelex_desktop.core.review.regions import Box, list_regions
from skelex_desktop.core.review.session import EventKind, ReviewEvent, ReviewSession, value_for
from skelex_desktop.core.review.worklist import WorklistQuery, WorklistRow, query_worklist
from tests.core.factories import add_image
from tests.core.test_review import _predict


class LiveRows:
    """The worklist in id order, read from the database at every call."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.query = WorklistQuery(sort="image_id", descending=False, limit=1)

    def row_at(self, row: int) -> WorklistRow | None:
        if row < 0:
            return None
        with self.db.read() as session:
            page = query_worklist(session, replace(self.query, offset=row))
        return page.rows[0] if page.rows else None


def images(db: Database, n: int) -> list[int]:
    with db.write() as s:
        return [add_image(s, sop=f"1.2.826.0.9.{i}").id for i in range(n)]


def current_labels(db: Database, image_id: int) -> dict[str, object]:
    with db.read() as s:
        rows = s.execute(
            select(Task.name, Label.value, Label.uncertain)
            .join(Task, Label.task_id == Task.id)
            .where(Label.image_id == image_id, Label.superseded_by.is_(None))
            .where(Label.retracted_at.is_(None))
        ).all()
    return {name: ("uncertain" if uncertain else value) for name, value, uncertain in rows}


@pytest.fixture
def session(db: Database):
    review = ReviewSession(db, "dr.session", LiveRows(db))
    events: list[ReviewEvent] = []
    review.subscribe(events.append)
    review.events = events  # type: ignore[attr-defined]
    yield review
    review.close()


def test_a_digit_is_a_class_of_the_current_task(db: Database, session: ReviewSession) -> None:
    (image_id,) = images(db, 1)
    session.open(image_id)
    states = {s.name: s for s in session.tasks}
    assert value_for(states["abnormal"], 1) == 1  # binary: 0 no, 1 yes
    assert value_for(states["kl_grade"], 3) == states["kl_grade"].classes[3]
    with pytest.raises(IndexError, match="classes 0-1"):
        value_for(states["abnormal"], 2)

    session.select_task("abnormal")
    assert session.choose(2) is False  # out of range: a message, nothing queued
    assert session.events[-1].kind == EventKind.MESSAGE and "0-1" in session.events[-1].message
    assert session.choose(1) and session.wait(10)
    assert current_labels(db, image_id) == {"abnormal": 1}
    session.step_task(1)
    assert session.events[-1].kind == EventKind.CURSOR
    assert session.current_task is not None and session.current_task.name != "abnormal"
    assert session.mark_uncertain() and session.wait(10)
    assert current_labels(db, image_id)[session.current_task.name] == "uncertain"


def test_writes_leave_the_callers_thread_and_keep_their_order(db: Database) -> None:
    (image_id,) = images(db, 1)
    writer = SerialExecutor()
    session = ReviewSession(db, "dr.session", LiveRows(db), writer)
    gate = threading.Event()
    writer.submit(gate.wait)  # a slow database: the writer is busy
    session.open(image_id)
    session.select_task("abnormal")
    session.choose(1)
    session.choose(0)
    session.undo()  # undoes "abnormal = 0" although it is not stored yet
    assert not session.idle and current_labels(db, image_id) == {}
    gate.set()
    assert session.wait(10) and session.idle
    assert current_labels(db, image_id) == {"abnormal": 1}
    with db.read() as s:
        actions = list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all())
    assert [a for a in actions if a.startswith("label.")][-3:] == [
        "label.set",
        "label.set",
        "label.undo",
    ]
    assert session.redo() and session.wait(10)
    assert current_labels(db, image_id) == {"abnormal": 0}
    session.close()


def test_enter_confirms_advances_past_reviewed_images_and_undo_reopens(
    db: Database, session: ReviewSession
) -> None:
    first, reviewed, third, fourth = images(db, 4)
    with db.write() as s:
        s.get(Image, reviewed).status = ImageStatus.CONFIRMED.value
    _predict(db, first, "implant", {"implant": 0.9}, 0.9)
    assert session.open_row(0)
    opened = session.events[-1]
    assert opened.kind == EventKind.OPENED
    assert [d.image_id for d in opened.prefetch] == [reviewed, third]
    session.select_task("abnormal")
    session.choose(0)  # the required task, decided (still queued when Enter comes)
    assert session.confirm()
    assert session.current is not None and session.current.image_id == third  # skips reviewed
    assert [d.image_id for d in session.events[-1].prefetch] == [fourth]
    assert session.wait(10)
    with db.read() as s:
        assert s.get(Image, first).status == ImageStatus.CONFIRMED
    # the shown suggestion was accepted beside the reader's own decision
    assert current_labels(db, first) == {"abnormal": 0, "implant": 1}
    changed = [e for e in session.events if e.kind == EventKind.CHANGED]
    assert changed and first in changed[-1].changes.images

    assert session.undo() and session.wait(10)
    with db.read() as s:
        assert s.get(Image, first).status == ImageStatus.NEW
    assert current_labels(db, first) == {"abnormal": 0}

    session.open_row(3)
    assert session.advance() is False
    assert session.events[-1].message == "No unreviewed image below this one"
    assert session.step_image(-1) and session.current.image_id == third
    assert session.step_image(5) is False


def test_a_failed_write_is_reported_and_leaves_no_history(
    db: Database, session: ReviewSession
) -> None:
    (image_id,) = images(db, 1)
    session.open(image_id)
    session.select_task("fracture")
    with db.write() as s:  # the task disappears from the schema after the image was opened
        s.delete(s.scalar(select(Task).where(Task.name == "fracture")))
    session.choose(1)
    assert session.wait(10)
    errors = [e for e in session.events if e.kind == EventKind.ERROR]
    assert errors and errors[-1].message.startswith("fracture = 1 failed:")
    assert not session.can_undo and session.undo() is False
    assert session.idle


def test_a_box_region_is_stored_and_undone(db: Database, session: ReviewSession) -> None:
    (image_id,) = images(db, 1)
    assert session.regions() == []  # nothing open
    session.open(image_id)
    session.select_task("fracture")
    assert session.add_region(Box(1, 2, 30, 40)) and session.wait(10)
    with db.read() as s:
        assert [box for _id, box in list_regions(s, image_id)] == [Box(1, 2, 30, 40)]
    assert session.regions() == [Box(1, 2, 30, 40)]
    assert session.can_undo and session.undo() and session.wait(10)
    with db.read() as s:
        assert list_regions(s, image_id) == []
    assert session.can_redo


def test_start_opens_the_first_image_that_needs_a_reader(
    db: Database, session: ReviewSession
) -> None:
    first, second = images(db, 2)
    with db.write() as s:
        s.get(Image, first).status = ImageStatus.CONFIRMED.value
    assert session.start() and session.current is not None
    assert (session.current.image_id, session.row) == (second, 1)
    with db.write() as s:
        s.get(Image, second).status = ImageStatus.CONFIRMED.value
    assert session.start() is False
    assert session.events[-1].message == "Every image of the worklist has been reviewed"


def test_enter_needs_every_required_task_decided(db: Database, session: ReviewSession) -> None:
    from skelex_desktop.core.review.decisions import UndecidedError, confirm_image

    first, second = images(db, 2)
    session.open(first)
    session.select_task("fracture")
    assert session.confirm() is False  # "abnormal" is required and undecided
    assert session.current_task.name == "abnormal"  # the cursor went to it
    assert session.events[-1].message.startswith("Not confirmed: Abnormal must be decided")
    with pytest.raises(UndecidedError, match="Abnormal must be decided"):
        confirm_image(db, first, "dr.session")  # the core rule, for every front end
    session.mark_uncertain()  # uncertain is a decision
    assert session.confirm() and session.wait(10)
    with db.read() as s:
        assert s.get(Image, first).status == ImageStatus.CONFIRMED

    with db.write() as s:  # no required task: still never confirmed with no decision at all
        s.scalar(select(Task).where(Task.name == "abnormal")).required = False
    session.open(second)
    assert session.confirm() is False
    assert session.events[-1].message.startswith("Not confirmed: no decision")
    with pytest.raises(UndecidedError, match="no decision"):
        confirm_image(db, second, "dr.session")
    with db.read() as s:
        assert s.get(Image, second).status == ImageStatus.NEW


def test_a_study_scoped_task_is_decided_once_for_the_study(db: Database, session) -> None:  # noqa: ANN001
    from skelex_desktop.core.review.schema import TaskSpec, add_task

    with db.write() as s:
        ap = add_image(s, sop="1.2.826.0.9.50", study_uid="1.2.9.1", series_uid="1.2.9.1.1").id
        lat = add_image(s, sop="1.2.826.0.9.51", study_uid="1.2.9.1", series_uid="1.2.9.1.2").id
        other = add_image(s, sop="1.2.826.0.9.52", study_uid="1.2.9.2", series_uid="1.2.9.2.1").id
        spec = TaskSpec.from_dict({"name": "study_normal", "kind": "binary", "scope": "study"})
        add_task(s, spec, "admin")
    session.open(ap)
    session.select_task("study_normal")
    assert session.choose(1) and session.wait(10)
    for image_id, expected in ((ap, {"study_normal": 1}), (lat, {"study_normal": 1}), (other, {})):
        assert current_labels(db, image_id) == expected
    assert session.undo() and session.wait(10)  # one decision, undone for the whole study
    assert current_labels(db, ap) == current_labels(db, lat) == {}
