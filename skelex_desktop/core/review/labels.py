"""Label operations: every human decision is its own committed, audited transaction.

A decision never overwrites an earlier one: the new `Label` row supersedes the current row for
the same (image, task), so the history stays queryable and a crash cannot lose a committed label.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from skelex_desktop.core.db import audit
from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Image, Label, Prediction, Series, Task, utcnow
from skelex_desktop.core.db.session_user import team_mode
from skelex_desktop.core.domain import (
    Changes,
    ImageStatus,
    LabelSource,
    PredictionRelation,
    TaskKind,
)
from skelex_desktop.core.review import reads


class LabelError(ValueError):
    """A label that cannot be stored; the message says which part is wrong."""


@dataclass(frozen=True)
class LabelView:
    """A current label as shown to users and written by `label list`."""

    id: int
    image_id: int
    sop_instance_uid: str
    task: str
    value: Any
    uncertain: bool
    source: str
    reader: str
    prediction_id: int | None
    prediction_relation: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        data = self.__dict__.copy()
        data["created_at"] = self.created_at.isoformat()
        return data


def get_task(session: Session, name: str) -> Task:
    task = session.scalar(select(Task).where(Task.name == name))
    if task is None:
        raise LabelError(f"unknown task {name!r}")
    return task


def normalise_value(task: Task, value: Any) -> Any:
    """The stored form of `value` for `task`, or a LabelError saying what is allowed."""
    kind = TaskKind(task.kind)
    classes = [str(c) for c in task.classes]
    if kind == TaskKind.BINARY:
        text = str(value).strip().lower()
        truthy = {"1", "true", "yes", "positive", classes[1].lower()}
        falsy = {"0", "false", "no", "negative", classes[0].lower()}
        if text in truthy:
            return 1
        if text in falsy:
            return 0
        raise LabelError(f"task {task.name!r} is binary: use 0/1 or {classes[0]!r}/{classes[1]!r}")
    if kind in (TaskKind.MULTICLASS, TaskKind.ORDINAL):
        text = str(value).strip()
        if text in classes:
            return text
        if kind == TaskKind.ORDINAL and text.isdigit() and int(text) < len(classes):
            return classes[int(text)]
        raise LabelError(f"task {task.name!r}: {text!r} is not one of {classes}")
    if kind == TaskKind.REGRESSION:
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise LabelError(f"task {task.name!r} needs a number, got {value!r}") from exc
    raise LabelError(f"task {task.name!r} is a region task: draw a region instead")


def is_current() -> ColumnElement[bool]:
    """The SQL condition for a current decision: neither superseded nor retracted."""
    return Label.superseded_by.is_(None) & Label.retracted_at.is_(None)


def _current(
    session: Session, image_id: int, task_id: int, reader: str | None = None
) -> Label | None:
    """The current decision for (image, task); of `reader` only, when given (team mode)."""
    query = select(Label).where(Label.image_id == image_id, Label.task_id == task_id, is_current())
    if reader is not None:
        query = query.where(Label.reader == reader)
    return session.scalar(query)


def _label_dict(label: Label) -> dict[str, Any]:
    return {
        "value": label.value,
        "uncertain": label.uncertain,
        "source": label.source,
        "reader": label.reader,
        "prediction_id": label.prediction_id,
        "prediction_relation": label.prediction_relation,
    }


def set_label(
    session: Session,
    image_id: int,
    task_name: str,
    value: Any,
    reader: str,
    *,
    uncertain: bool = False,
    prediction_id: int | None = None,
    source: LabelSource = LabelSource.HUMAN,
) -> Label:
    """Store a decision in the caller's transaction, superseding the current one."""
    if not reader:
        raise LabelError("a label needs a reader name")
    task = get_task(session, task_name)
    image = session.get(Image, image_id)
    if image is None:
        raise LabelError(f"no image with id {image_id}")
    stored = None if uncertain and value is None else normalise_value(task, value)
    relation = PredictionRelation.NONE
    if prediction_id is not None:
        prediction = session.get(Prediction, prediction_id)
        if prediction is None or prediction.image_id != image_id or prediction.task_id != task.id:
            raise LabelError(f"prediction {prediction_id} is not for this image and task")
        relation = (
            PredictionRelation.CONFIRMED
            if prediction_value(task, prediction) == stored
            else PredictionRelation.OVERRODE
        )
    # in team mode each reader's decisions are their own rows: a decision supersedes only the
    # same reader's current one (the database refuses a change to someone else's)
    previous = _current(session, image_id, task.id, reader if team_mode(session) else None)
    label = Label(
        image_id=image_id,
        task_id=task.id,
        value=stored,
        uncertain=uncertain,
        source=source.value,
        reader=reader,
        prediction_id=prediction_id,
        prediction_relation=relation.value,
    )
    session.add(label)
    session.flush()
    if previous is not None:
        previous.superseded_by = label.id
    if source == LabelSource.HUMAN and reads.held_by_project(session, image_id):
        # a project's image: the reader's own assignment moves, not the shared status
        reads.mark(session, image_id, reader, reads.IN_REVIEW, only_from=reads.ASSIGNED)
    elif source == LabelSource.HUMAN and image.status != ImageStatus.CONFIRMED:
        image.status = ImageStatus.IN_REVIEW.value
        image.reader = reader
    audit.record(
        session,
        reader,
        "label.set",
        "label",
        label.id,
        before=_label_dict(previous) if previous else None,
        after=_label_dict(label) | {"image_id": image_id, "task": task_name},
    )
    return label


def prediction_value(task: Task, prediction: Prediction) -> Any:
    """The class a prediction proposes: the most probable one (binary: p >= 0.5, or a score
    above the prediction's own threshold for threshold-based outputs such as zero-shot maps)."""
    probs = prediction.probabilities or {}
    details = prediction.details or {}
    if TaskKind(task.kind) == TaskKind.BINARY and "threshold" in details:
        threshold = details["threshold"]
        if threshold is None or prediction.score is None:
            return None  # an uncalibrated score suggests nothing
        return int(prediction.score > float(threshold))
    if TaskKind(task.kind) == TaskKind.BINARY:
        p = probs.get(str(task.classes[1]), prediction.score)
        return None if p is None else int(float(p) >= 0.5)
    if not probs:
        return None
    return max(probs, key=lambda k: float(probs[k]))


def confirm_label(
    db: Database,
    image_id: int,
    task_name: str,
    value: Any,
    reader: str,
    *,
    uncertain: bool = False,
    prediction_id: int | None = None,
) -> Changes:
    """Commit one human decision at once, as its own transaction. A study-scoped task is
    decided for every image of the image's study (one label each, one transaction)."""
    with db.write() as session:
        images = [image_id]
        if get_task(session, task_name).scope == "study":
            images += [i for i in study_image_ids(session, image_id) if i != image_id]
        labels = [
            set_label(
                session,
                target,
                task_name,
                value,
                reader,
                uncertain=uncertain,
                prediction_id=prediction_id if target == image_id else None,
            ).id
            for target in images
        ]
    return Changes(images=set(images), labels=set(labels), tasks={task_name}, worklist=True)


def study_image_ids(session: Session, image_id: int) -> list[int]:
    """Every image of `image_id`'s study, in id order."""
    study = (
        select(Series.study_id)
        .join(Image, Image.series_id == Series.id)
        .where(Image.id == image_id)
        .scalar_subquery()
    )
    return list(
        session.scalars(
            select(Image.id)
            .join(Series, Image.series_id == Series.id)
            .where(Series.study_id == study)
            .order_by(Image.id)
        )
    )


def current_labels(session: Session, task_name: str | None = None) -> list[LabelView]:
    """Every current (not superseded) label, optionally for one task."""
    query = (
        select(Label, Task.name, Image.sop_instance_uid)
        .join(Task, Task.id == Label.task_id)
        .join(Image, Image.id == Label.image_id)
        .where(is_current())
        .order_by(Label.image_id, Task.order)
    )
    if task_name:
        query = query.where(Task.name == task_name)
    return [
        LabelView(
            id=label.id,
            image_id=label.image_id,
            sop_instance_uid=sop,
            task=name,
            value=label.value,
            uncertain=label.uncertain,
            source=label.source,
            reader=label.reader,
            prediction_id=label.prediction_id,
            prediction_relation=label.prediction_relation,
            created_at=label.created_at,
        )
        for label, name, sop in session.execute(query)
    ]


def undo_label(db: Database, label_id: int, reader: str) -> Changes:
    """Retract a current decision; the decision it superseded (if any) becomes current again."""
    with db.write() as session:
        label = session.get(Label, label_id)
        if label is None:
            raise LabelError(f"no label with id {label_id}")
        if label.superseded_by is not None or label.retracted_at is not None:
            raise LabelError(
                f"label {label_id} is not the current decision; undo the later one first"
            )
        label.retracted_at = utcnow()
        previous = session.scalar(select(Label).where(Label.superseded_by == label.id))
        if previous is not None:
            previous.superseded_by = None
        task_name = session.scalar(select(Task.name).where(Task.id == label.task_id)) or ""
        audit.record(
            session,
            reader,
            "label.undo",
            "label",
            label.id,
            before=_label_dict(label),
            after={"current": previous.id if previous is not None else None},
        )
        image_id = label.image_id
    return Changes(images={image_id}, labels={label_id}, tasks={task_name}, worklist=True)
