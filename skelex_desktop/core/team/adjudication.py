"""Adjudication: the queue of images whose reads are in, and final labels with a version.

An (image, task) of a project is *complete* when it holds `reads_per_image` current reads of its
assigned readers; complete reads that differ (value or "uncertain") need an adjudicator. The
adjudicator sees every read side by side, and the AI's suggestion when the project showed it to
the readers, and stores the final label: a new `FinalLabel` row whose `version` is one more
than the version the adjudicator read. Whoever stored another version since is named in the
refusal; two adjudicators who read the same version cannot both store the next one (the
database's unique key on image, task and version decides, whichever process commits first).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from skelex_desktop.core.db import audit
from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import (
    Assignment,
    FinalLabel,
    Image,
    Label,
    Project,
    ProjectImage,
    Task,
)
from skelex_desktop.core.db.session_user import session_user, team_mode
from skelex_desktop.core.domain import ImageStatus
from skelex_desktop.core.review.decisions import task_states
from skelex_desktop.core.review.labels import LabelError, get_task, is_current, normalise_value
from skelex_desktop.core.team.projects import ACTIVE, ProjectError, get_project
from skelex_desktop.core.team.setup import ADJUDICATOR, ADMIN


class AdjudicationError(ValueError):
    """A final label that cannot be stored; the message says why."""


class StaleVersionError(AdjudicationError):
    """The final label changed since the adjudicator read it: nothing was stored."""


@dataclass(frozen=True)
class Read:
    """One reader's current decision."""

    label_id: int
    reader: str
    value: Any
    uncertain: bool
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "label_id": self.label_id,
            "reader": self.reader,
            "value": self.value,
            "uncertain": self.uncertain,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True)
class FinalView:
    """The current (highest) version of a final label."""

    value: Any
    uncertain: bool
    version: int
    adjudicator: str
    decided_at: datetime
    provenance: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        data = self.__dict__.copy()
        data["decided_at"] = self.decided_at.isoformat()
        return data


@dataclass(frozen=True)
class QueueItem:
    """One image and task of a project: its reads, the AI's suggestion if shown, the final."""

    project: str
    image_id: int
    task: str
    expected: int
    reads: list[Read] = field(default_factory=list)
    ai: dict[str, Any] | None = None
    final: FinalView | None = None

    @property
    def complete(self) -> bool:
        return len(self.reads) >= self.expected

    @property
    def agree(self) -> bool:
        return len({(repr(r.value), r.uncertain) for r in self.reads}) <= 1

    @property
    def version(self) -> int:
        """The version an adjudicator reads (0: no final label yet)."""
        return self.final.version if self.final is not None else 0

    @property
    def state(self) -> str:
        if self.final is not None:
            return "final"
        if not self.complete:
            return "reading"
        return "agree" if self.agree else "disagree"

    def to_json(self) -> dict[str, Any]:
        return {
            "project": self.project,
            "image_id": self.image_id,
            "task": self.task,
            "state": self.state,
            "expected_reads": self.expected,
            "reads": [r.to_json() for r in self.reads],
            "ai": self.ai,
            "final": self.final.to_json() if self.final is not None else None,
            "version": self.version,
        }


def current_finals(
    session: Session, image_ids: list[int], task_ids: list[int] | None = None
) -> dict[tuple[int, int], FinalLabel]:
    """The highest version of each (image, task)'s final label among `image_ids`."""
    newest = (
        select(
            FinalLabel.image_id, FinalLabel.task_id, func.max(FinalLabel.version).label("version")
        )
        .where(FinalLabel.image_id.in_(image_ids))
        .group_by(FinalLabel.image_id, FinalLabel.task_id)
    )
    if task_ids is not None:
        newest = newest.where(FinalLabel.task_id.in_(task_ids))
    top = newest.subquery()
    rows = session.scalars(
        select(FinalLabel).join(
            top,
            (top.c.image_id == FinalLabel.image_id)
            & (top.c.task_id == FinalLabel.task_id)
            & (top.c.version == FinalLabel.version),
        )
    )
    return {(f.image_id, f.task_id): f for f in rows}


def _final_view(final: FinalLabel | None) -> FinalView | None:
    if final is None:
        return None
    return FinalView(
        value=final.value,
        uncertain=final.uncertain,
        version=final.version,
        adjudicator=final.adjudicator,
        decided_at=final.decided_at,
        provenance=dict(final.provenance or {}),
    )


def _ai(session: Session, image_id: int) -> dict[str, dict[str, Any]]:
    """The AI's suggestion per task, as the review panel showed it to the readers."""
    return {
        s.name: {
            "prediction_id": s.prediction_id,
            "value": s.suggestion,
            "probability": s.probability,
            "method": s.method,
        }
        for s in task_states(session, image_id)
        if s.has_suggestion
    }


def _reads(
    session: Session, project: Project, image_ids: list[int], tasks: dict[int, str]
) -> dict[tuple[int, str], list[Read]]:
    assigned = (
        select(Assignment.image_id, Assignment.reader)
        .where(Assignment.project_id == project.id, Assignment.image_id.in_(image_ids))
        .subquery()
    )
    rows = session.scalars(
        select(Label)
        .join(
            assigned,
            (assigned.c.image_id == Label.image_id) & (assigned.c.reader == Label.reader),
        )
        .where(Label.task_id.in_(list(tasks)), is_current(), Label.source == "human")
        .order_by(Label.reader, Label.id)
    )
    reads: dict[tuple[int, str], list[Read]] = defaultdict(list)
    for label in rows:
        reads[(label.image_id, tasks[label.task_id])].append(
            Read(label.id, label.reader, label.value, bool(label.uncertain), label.created_at)
        )
    return reads


def require_adjudicator(session: Session, what: str) -> None:
    """In team mode, refuse a reader: the queue and final labels belong to adjudicators."""
    if not team_mode(session):
        return
    allowed = session.execute(
        text(
            "SELECT pg_has_role(session_user, :a, 'MEMBER') OR pg_has_role(session_user, :b, 'MEMBER')"
        ),
        {"a": ADJUDICATOR, "b": ADMIN},
    ).scalar()
    if not allowed:
        raise AdjudicationError(
            f"only an adjudicator ({ADJUDICATOR}) can {what}: you are connected as "
            f"{session_user(session)}, a reader"
        )


def project_items(
    session: Session, project: Project, image_ids: list[int] | None = None
) -> list[QueueItem]:
    """Every (image, task) of `project` (or of its images among `image_ids`)."""
    tasks = {
        t.id: t.name for t in session.scalars(select(Task).where(Task.name.in_(project.tasks)))
    }
    query = select(ProjectImage.image_id).where(ProjectImage.project_id == project.id)
    if image_ids is not None:
        query = query.where(ProjectImage.image_id.in_(image_ids))
    images = list(session.scalars(query.order_by(ProjectImage.image_id)))
    if not images:
        return []
    reads = _reads(session, project, images, tasks)
    finals = current_finals(session, images, list(tasks))
    order = [n for n in project.tasks if n in tasks.values()]
    by_name = {name: task_id for task_id, name in tasks.items()}
    items = []
    for image_id in images:
        ai = _ai(session, image_id) if project.show_ai else {}
        for name in order:
            items.append(
                QueueItem(
                    project=project.name,
                    image_id=image_id,
                    task=name,
                    expected=project.reads_per_image,
                    reads=reads.get((image_id, name), []),
                    ai=ai.get(name) if project.show_ai else None,
                    final=_final_view(finals.get((image_id, by_name[name]))),
                )
            )
    return items


def adjudication_queue(
    session: Session, project_name: str | None = None, everything: bool = False
) -> list[QueueItem]:
    """What waits for an adjudicator: complete reads that disagree, then complete reads that
    agree (to confirm), without a final label yet; `everything`: every item, any state."""
    require_adjudicator(session, "see the adjudication queue")
    if project_name is not None:
        projects = [get_project(session, project_name)]
    else:
        projects = list(
            session.scalars(select(Project).where(Project.status == ACTIVE).order_by(Project.id))
        )
    items = [item for project in projects for item in project_items(session, project)]
    if everything:
        return items
    rank = {"disagree": 0, "agree": 1}
    waiting = [i for i in items if i.state in rank]
    return sorted(waiting, key=lambda i: rank[i.state])


def _project_of(session: Session, image_id: int, task: str, name: str | None) -> Project:
    if name is not None:
        project = get_project(session, name)
        held = session.scalar(
            select(ProjectImage.image_id).where(
                ProjectImage.project_id == project.id, ProjectImage.image_id == image_id
            )
        )
        if held is None or task not in project.tasks:
            raise AdjudicationError(
                f"project {name!r} does not read task {task!r} of image {image_id}"
            )
        return project
    projects = list(
        session.scalars(
            select(Project)
            .join(ProjectImage, ProjectImage.project_id == Project.id)
            .where(ProjectImage.image_id == image_id)
            .order_by(Project.status, Project.id)  # active before closed
        )
    )
    projects = [p for p in projects if task in p.tasks]
    if not projects:
        raise AdjudicationError(
            f"image {image_id} is in no project reading task {task!r}: final labels decide "
            "between the reads of a project (team project create)"
        )
    active = [p for p in projects if p.status == ACTIVE] or projects
    if len(active) > 1:
        names = ", ".join(p.name for p in active)
        raise AdjudicationError(
            f"image {image_id} task {task!r} is read in several projects ({names}); "
            "name one with --project"
        )
    return active[0]


def _stale(final: FinalLabel, image_id: int, task: str, read_version: int) -> StaleVersionError:
    at = final.decided_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    return StaleVersionError(
        f"the final label of image {image_id} task {task} was changed by {final.adjudicator} "
        f"at {at} since you read version {read_version}: it is now version {final.version} "
        f"(value {final.value!r}); nothing was stored; look again (team show {image_id}) and "
        f"adjudicate version {final.version} if you still disagree"
    )


def adjudicate(
    db: Database,
    image_id: int,
    task_name: str,
    value: Any,
    read_version: int,
    adjudicator: str,
    *,
    uncertain: bool = False,
    project_name: str | None = None,
    note: str = "",
) -> FinalView:
    """Store the final label of (image, task) as version `read_version + 1`, with the reads
    and the AI suggestion it was decided from. Refused (`StaleVersionError`) when the current
    version is not `read_version`."""
    if read_version < 0:
        raise AdjudicationError(
            f"--version is the version you read (0: none yet), not {read_version}"
        )
    task_id: int | None = None
    try:
        with db.write() as session:
            require_adjudicator(session, "store final labels")
            if session.get(Image, image_id) is None:
                raise AdjudicationError(f"no image with id {image_id}")
            try:
                task = get_task(session, task_name)
                task_id = task.id
                stored = None if uncertain and value is None else normalise_value(task, value)
            except LabelError as exc:
                raise AdjudicationError(str(exc)) from exc
            try:
                project = _project_of(session, image_id, task_name, project_name)
            except ProjectError as exc:
                raise AdjudicationError(str(exc)) from exc
            current = current_finals(session, [image_id], [task.id]).get((image_id, task.id))
            version = current.version if current is not None else 0
            if current is not None and version != read_version:
                raise _stale(current, image_id, task_name, read_version)
            if current is None and read_version != 0:
                raise AdjudicationError(
                    f"image {image_id} task {task_name} has no final label yet: adjudicate "
                    "version 0"
                )
            item = project_items(session, project, [image_id])
            shown = next(i for i in item if i.task == task_name)
            provenance: dict[str, Any] = {
                "project": project.name,
                "reads": [r.to_json() for r in shown.reads],
                "expected_reads": project.reads_per_image,
                "ai": shown.ai,
                "ai_shown_to_readers": project.show_ai,
                "previous_version": version or None,
            }
            if note:
                provenance["note"] = note
            final = FinalLabel(
                image_id=image_id,
                task_id=task.id,
                project_id=project.id,
                value=stored,
                uncertain=uncertain,
                version=read_version + 1,
                adjudicator=adjudicator,
                provenance=provenance,
            )
            session.add(final)
            session.flush()
            audit.record(
                session,
                adjudicator,
                "final_label.set",
                "final_label",
                final.id,
                before=None if current is None else {"version": version, "value": current.value},
                after={
                    "image_id": image_id,
                    "task": task_name,
                    "version": final.version,
                    "value": stored,
                    "uncertain": uncertain,
                },
            )
            _confirm_when_final(session, project, image_id)
            view = _final_view(final)
    except IntegrityError as exc:  # another adjudicator stored this version first
        if task_id is None:
            raise
        with db.read() as session:
            winner = current_finals(session, [image_id], [task_id]).get((image_id, task_id))
        if winner is None:
            raise
        raise _stale(winner, image_id, task_name, read_version) from exc
    except DBAPIError as exc:
        text_ = str(getattr(exc, "orig", exc))
        if "permission denied" in text_ or "row-level security" in text_:
            raise AdjudicationError(
                f"only an adjudicator ({ADJUDICATOR}) can store final labels: the database "
                f"refused it ({text_.splitlines()[0]})"
            ) from exc
        raise
    assert view is not None
    return view


def _confirm_when_final(session: Session, project: Project, image_id: int) -> None:
    """An image whose every project task has a final label is confirmed."""
    task_ids = list(session.scalars(select(Task.id).where(Task.name.in_(project.tasks))))
    decided = session.scalar(
        select(func.count(func.distinct(FinalLabel.task_id))).where(
            FinalLabel.image_id == image_id, FinalLabel.task_id.in_(task_ids)
        )
    )
    if decided == len(task_ids):
        image = session.get_one(Image, image_id)
        if image.status != ImageStatus.CONFIRMED:
            image.status = ImageStatus.CONFIRMED.value


def image_items(
    session: Session, image_id: int, project_name: str | None = None
) -> list[QueueItem]:
    """Every read, AI suggestion and final label of one image, for the adjudicator."""
    require_adjudicator(session, "see every read of an image")
    query = (
        select(Project)
        .join(ProjectImage, ProjectImage.project_id == Project.id)
        .where(ProjectImage.image_id == image_id)
        .order_by(Project.id)
    )
    if project_name is not None:
        query = query.where(Project.name == project_name)
    projects = list(session.scalars(query))
    if not projects:
        raise AdjudicationError(
            f"image {image_id} is in no project"
            + (f" named {project_name!r}" if project_name else "")
        )
    return [item for p in projects for item in project_items(session, p, [image_id])]
