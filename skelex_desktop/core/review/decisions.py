"""Review operations: what the reader sees for one image, and one-key decisions.

The AI side (`Prediction`) and the human side (`Label`) stay separate: confirming a suggestion
writes a human label that names the prediction it confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from skelex_desktop.core.db import audit
from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import (
    Image,
    Label,
    ModelVersion,
    Patient,
    Prediction,
    Series,
    Study,
    Task,
)
from skelex_desktop.core.db.session_user import session_user, team_mode
from skelex_desktop.core.domain import MIN_RELIABLE_AUROC, Changes, ImageStatus, TaskKind
from skelex_desktop.core.inference.reliability import finite_or_none
from skelex_desktop.core.ingest.image_paths import resolve_image_path, session_image_root
from skelex_desktop.core.review import reads
from skelex_desktop.core.review.labels import LabelError, is_current, prediction_value, set_label
from skelex_desktop.core.review.schema import list_tasks


@dataclass(frozen=True)
class ImageDetails:
    """Where an image's pixels are and the header facts the viewer shows."""

    image_id: int
    file_path: Path
    frame: int
    rows: int
    cols: int
    content_hash: str
    laterality: str
    view: str
    body_part: str
    modality: str
    status: str
    patient_id: str
    patient_name: str
    study_date: date | None


def image_details(session: Session, image_id: int) -> ImageDetails:
    row = session.execute(
        select(Image, Patient.patient_id, Patient.name, Study.study_date)
        .join(Series, Image.series_id == Series.id)
        .join(Study, Series.study_id == Study.id)
        .join(Patient, Study.patient_id == Patient.id)
        .where(Image.id == image_id)
    ).first()
    if row is None:
        raise LabelError(f"no image with id {image_id}")
    image, patient_id, patient_name, study_date = row
    return ImageDetails(
        image_id=image.id,
        file_path=resolve_image_path(image.file_path, session_image_root(session)),
        frame=image.frame,
        rows=image.rows,
        cols=image.cols,
        content_hash=image.content_hash,
        laterality=image.laterality,
        view=image.view,
        body_part=image.body_part,
        modality=image.modality,
        status=reads.own_status(session, image_id, image.status),
        patient_id=patient_id,
        patient_name=patient_name,
        study_date=study_date,
    )


MIN_CONFIRM_AUROC = MIN_RELIABLE_AUROC  # a head below this is shown, never accepted by Enter


@dataclass(frozen=True)
class TaskState:
    """One task for one image: the AI suggestion (if any) and the current human decision."""

    name: str
    title: str
    kind: str
    classes: list[str]
    prediction_id: int | None
    suggestion: Any
    probability: float | None
    score: float | None
    threshold: float | None
    method: str
    driver: dict[str, Any] | None  # region-guided heads: the region behind the suggestion
    cv_auroc: float | None  # the suggesting head's cross-validated AUROC, when it has one
    calibration_auroc: float | None  # a zero-shot map's image AUROC on its calibration set
    label_id: int | None
    value: Any
    uncertain: bool
    reader: str
    required: bool = False

    @property
    def decided(self) -> bool:
        """The reader has a current decision for it (a value, or "uncertain")."""
        return self.label_id is not None

    @property
    def has_suggestion(self) -> bool:
        return self.prediction_id is not None and self.suggestion is not None

    @property
    def measured_auroc(self) -> float | None:
        """How well the suggesting model was measured to do: a head's cross-validated AUROC,
        else a zero-shot map's calibration AUROC; None when nothing was measured."""
        return self.cv_auroc if self.cv_auroc is not None else self.calibration_auroc

    @property
    def confirmable(self) -> bool:
        """Whether Enter accepts this suggestion: not when its model is known to be weak
        (`measured_auroc` below MIN_CONFIRM_AUROC); the reader can still choose it."""
        auroc = self.measured_auroc
        return self.has_suggestion and (auroc is None or auroc >= MIN_CONFIRM_AUROC)


def task_states(session: Session, image_id: int) -> list[TaskState]:
    """Every schema task with its newest prediction (active model first) and current label."""
    predictions: dict[int, Prediction] = {}
    version_metrics: dict[int, dict[str, Any]] = {}
    rows = session.execute(
        select(Prediction, ModelVersion.metrics)
        .join(ModelVersion, Prediction.model_version_id == ModelVersion.id)
        .where(Prediction.image_id == image_id)
        .order_by(ModelVersion.active, Prediction.created_at, Prediction.id)
    )
    for prediction, metrics in rows:  # later rows (active, newest) win
        predictions[prediction.task_id] = prediction
        version_metrics[prediction.task_id] = metrics or {}
    mine = select(Label).where(Label.image_id == image_id, is_current(), Label.source == "human")
    if team_mode(session):  # each reader has their own current decisions: show this reader's
        mine = mine.where(Label.reader == session_user(session))
    labels = {label.task_id: label for label in session.scalars(mine)}
    states = []
    for task in list_tasks(session):
        prediction = predictions.get(task.id)
        label = labels.get(task.id)
        suggestion = prediction_value(task, prediction) if prediction else None
        states.append(
            TaskState(
                name=task.name,
                title=task.title,
                kind=task.kind,
                classes=[str(c) for c in task.classes],
                prediction_id=prediction.id if prediction else None,
                suggestion=suggestion,
                probability=_probability(task, prediction, suggestion),
                score=prediction.score if prediction else None,
                threshold=(prediction.details or {}).get("threshold") if prediction else None,
                method=(prediction.details or {}).get("method", "") if prediction else "",
                driver=(prediction.details or {}).get("driver") if prediction else None,
                cv_auroc=_cv_auroc(version_metrics.get(task.id, {}), task.name),
                calibration_auroc=finite_or_none(
                    (prediction.details or {}).get("calibration_auroc") if prediction else None
                ),
                label_id=label.id if label else None,
                value=label.value if label else None,
                uncertain=bool(label.uncertain) if label else False,
                reader=label.reader if label else "",
                required=bool(task.required),
            )
        )
    return states


def _cv_auroc(metrics: dict[str, Any], task_name: str) -> float | None:
    value = ((metrics.get("cv") or {}).get(task_name) or {}).get("auroc")
    return None if value is None else float(value)


def _probability(task: Task, prediction: Prediction | None, suggestion: Any) -> float | None:
    if prediction is None or suggestion is None:
        return None
    probs = prediction.probabilities or {}
    if "threshold" in (prediction.details or {}):
        return None  # a thresholded score, not a probability
    if TaskKind(task.kind) == TaskKind.BINARY:
        p = probs.get(str(task.classes[1]), prediction.score)
        return None if p is None else float(p)
    value = probs.get(str(suggestion))
    return None if value is None else float(value)


class UndecidedError(LabelError):
    """Enter on an image with a required task undecided, or with no decision at all."""

    def __init__(self, message: str, tasks: list[str]) -> None:
        super().__init__(message)
        self.tasks = tasks


def undecided_required(states: list[TaskState], deciding: set[str] | None = None) -> list[str]:
    """The required tasks that Enter would leave without a decision: not decided by the reader
    (nor in `deciding`, decisions on their way), and without a suggestion Enter accepts."""
    deciding = deciding or set()
    return [
        s.name
        for s in states
        if s.required and not s.decided and s.name not in deciding and not s.confirmable
    ]


def confirm_image(db: Database, image_id: int, reader: str) -> Changes:
    """Enter: accept every confirmable suggestion the reader has not decided (see
    `TaskState.confirmable`), mark the image confirmed.

    Refused (`UndecidedError`) when a required task would stay undecided, or when the image
    would be confirmed with no decision at all. One transaction: either every confirmation and
    the status change are stored, or none.
    """
    changes = Changes(images={image_id}, worklist=True)
    with db.write() as session:
        image = session.get(Image, image_id)
        if image is None:
            raise LabelError(f"no image with id {image_id}")
        states = task_states(session, image_id)
        missing = undecided_required(states)
        if missing:
            titles = ", ".join(s.title for s in states if s.name in missing)
            raise UndecidedError(
                f"image {image_id} is not confirmed: {titles} must be decided first "
                "(a digit, or U for uncertain)",
                missing,
            )
        if not any(s.decided or s.confirmable for s in states):
            raise UndecidedError(
                f"image {image_id} is not confirmed: it has no decision and no suggestion "
                "Enter accepts; decide at least one task",
                [],
            )
        for state in states:
            if state.label_id is None and state.confirmable:
                label = set_label(
                    session,
                    image_id,
                    state.name,
                    state.suggestion,
                    reader,
                    prediction_id=state.prediction_id,
                )
                changes.labels.add(label.id)
                changes.tasks.add(state.name)
        if reads.held_by_project(session, image_id):  # the reader's own read is done
            before = reads.own_status(session, image_id, image.status)
            reads.mark(session, image_id, reader, reads.DONE)
            after = ImageStatus.CONFIRMED.value
        else:
            before = image.status
            image.status = after = ImageStatus.CONFIRMED.value
            image.reader = reader
        audit.record(
            session,
            reader,
            "image.confirm",
            "image",
            image_id,
            before={"status": before},
            after={"status": after, "labels": sorted(changes.labels)},
        )
    return changes


def reopen_image(db: Database, image_id: int, reader: str, status: str) -> Changes:
    """Undo of a confirmation: put the image back to `status` (audited)."""
    with db.write() as session:
        image = session.get(Image, image_id)
        if image is None:
            raise LabelError(f"no image with id {image_id}")
        if reads.held_by_project(session, image_id):  # the reader's own read state
            before = reads.own_status(session, image_id, image.status)
            reads.mark(session, image_id, reader, reads.state_of_status(status))
        else:
            before = image.status
            image.status = ImageStatus(status).value
        audit.record(
            session,
            reader,
            "image.reopen",
            "image",
            image_id,
            {"status": before},
            {"status": status},
        )
    return Changes(images={image_id}, worklist=True)


def ensure_model_version(
    session: Session, name: str, version: str, file_sha256: dict[str, str]
) -> ModelVersion:
    """The ModelVersion row of a model package, created (and activated if first) on first use."""
    found = session.scalar(
        select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version)
    )
    if found is not None:
        return found
    any_active = session.scalar(select(ModelVersion.id).where(ModelVersion.active.is_(True)))
    created = ModelVersion(
        name=name, version=version, file_sha256=file_sha256, active=any_active is None
    )
    session.add(created)
    session.flush()
    return created
