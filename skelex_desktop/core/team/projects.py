"""Reading projects: an image set from worklist filters, tasks, readers and reads per image.

Creating a project stores its images and deals the reads out: image i (in id order) goes to
`reads_per_image` consecutive readers of the list, starting at reader i * reads, so every
reader gets the same share and no image is read twice by one reader. In team mode only an admin
may create or close one (the database refuses everyone else); a reader's worklist then shows
their assignments, and while the project is blinded and active no reader sees another's
decisions on its images (row-level security, see `setup`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from skelex_desktop.core.db import audit
from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Assignment, Project, ProjectImage, ProjectReader, Task
from skelex_desktop.core.db.session_user import session_user, team_mode
from skelex_desktop.core.names import InvalidName, check_name
from skelex_desktop.core.review.worklist import WorklistQuery, query_worklist
from skelex_desktop.core.team.setup import ADJUDICATOR, READER

ACTIVE = "active"
CLOSED = "closed"


class ProjectError(ValueError):
    """A project that cannot be created or changed; the message says why."""


@dataclass(frozen=True)
class ProjectView:
    """A project as `team project list` shows it."""

    id: int
    name: str
    tasks: list[str]
    readers: list[str]
    reads_per_image: int
    show_ai: bool
    blinded: bool
    status: str
    images: int
    filters: dict[str, Any]
    created_by: str
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        data = self.__dict__.copy()
        data["created_at"] = self.created_at.isoformat()
        return data


def filters_json(query: WorklistQuery) -> dict[str, Any]:
    """The worklist filters of `query` that are set, as stored with a project."""
    data: dict[str, Any] = {}
    for key in ("status", "modality", "body_part", "laterality", "text"):
        value = getattr(query, key)
        if value:
            data[key] = value if isinstance(value, str) else list(value)
    if query.image_ids is not None:
        data["image_ids"] = list(query.image_ids)
    for key in ("date_from", "date_to"):
        value = getattr(query, key)
        if value is not None:
            data[key] = value.isoformat()
    return data


def _image_ids(session: Session, query: WorklistQuery) -> list[int]:
    probe = WorklistQuery(**{**query.__dict__, "limit": 0, "offset": 0})
    total = query_worklist(session, probe).total
    if total == 0:
        return []
    every = WorklistQuery(
        **{**query.__dict__, "sort": "image_id", "descending": False, "offset": 0, "limit": total}
    )
    return [row.image_id for row in query_worklist(session, every).rows]


def _check_readers(session: Session, readers: list[str]) -> list[str]:
    names: list[str] = []
    for reader in readers:
        try:
            name = check_name(reader)
        except InvalidName as exc:
            raise ProjectError(f"{exc}; give another --reader") from exc
        if name in names:
            raise ProjectError(f"reader {name!r} is given twice")
        names.append(name)
    if not names:
        raise ProjectError("a project needs at least one reader (--reader NAME)")
    if team_mode(session):
        for name in names:
            member = session.execute(
                text(
                    "SELECT pg_has_role(r.rolname, :reader, 'MEMBER') "
                    "OR pg_has_role(r.rolname, :adjudicator, 'MEMBER') "
                    "FROM pg_roles r WHERE r.rolname = :name AND r.rolcanlogin"
                ),
                {"name": name, "reader": READER, "adjudicator": ADJUDICATOR},
            ).scalar()
            if not member:
                raise ProjectError(
                    f"{name!r} is not a reader of this team database: add them first with "
                    f"`skelex-desktop team add-user {name} --role reader`"
                )
    return names


def _check_tasks(session: Session, tasks: list[str]) -> list[str]:
    if not tasks:
        raise ProjectError("a project needs at least one task (--task NAME)")
    known = {t.name: t for t in session.scalars(select(Task))}
    for name in tasks:
        task = known.get(name)
        if task is None:
            raise ProjectError(f"unknown task {name!r}; known: {', '.join(sorted(known))}")
        if task.kind == "region":
            raise ProjectError(
                f"task {name!r} is a region task: projects compare per-image decisions "
                "(binary, multiclass, ordinal or regression tasks)"
            )
    if len(set(tasks)) != len(tasks):
        raise ProjectError("a task is given twice")
    return list(tasks)


def deal_reads(image_ids: list[int], readers: list[str], reads: int) -> list[tuple[int, str]]:
    """(image, reader) pairs: each image to `reads` consecutive readers, turn by turn."""
    n = len(readers)
    return [
        (image_id, readers[(i * reads + k) % n])
        for i, image_id in enumerate(image_ids)
        for k in range(reads)
    ]


def _refused(db: Database, exc: DBAPIError, what: str) -> ProjectError:
    with db.read() as session:
        who = session_user(session) or "this user"
    return ProjectError(
        f"only a team admin (skelex_admin) can {what}: you are connected as {who} "
        f"({str(getattr(exc, 'orig', exc)).splitlines()[0]})"
    )


def create_project(
    db: Database,
    name: str,
    images: WorklistQuery,
    tasks: list[str],
    readers: list[str],
    reads_per_image: int,
    *,
    show_ai: bool = False,
    blinded: bool = False,
    who: str,
) -> ProjectView:
    """Create a project over the images `images` selects and deal out its reads."""
    try:
        name = check_name(name, "project name")
    except InvalidName as exc:
        raise ProjectError(str(exc)) from exc
    if reads_per_image < 1:
        raise ProjectError(f"--reads must be at least 1, not {reads_per_image}")
    try:
        with db.write() as session:
            if session.scalar(select(Project.id).where(Project.name == name)) is not None:
                raise ProjectError(f"a project named {name!r} exists already; choose another name")
            task_names = _check_tasks(session, tasks)
            reader_names = _check_readers(session, readers)
            if reads_per_image > len(reader_names):
                raise ProjectError(
                    f"--reads {reads_per_image} needs at least {reads_per_image} readers, "
                    f"and {len(reader_names)} were given"
                )
            image_ids = _image_ids(session, images)
            if not image_ids:
                raise ProjectError(
                    f"no image matches the filters {filters_json(images) or '(none)'}; "
                    "check them with `skelex-desktop worklist`"
                )
            project = Project(
                name=name,
                filters=filters_json(images),
                tasks=task_names,
                reads_per_image=reads_per_image,
                show_ai=show_ai,
                blinded=blinded,
                status=ACTIVE,
                created_by=who,
            )
            session.add(project)
            session.flush()
            session.add_all(ProjectReader(project_id=project.id, reader=r) for r in reader_names)
            session.add_all(ProjectImage(project_id=project.id, image_id=i) for i in image_ids)
            session.add_all(
                Assignment(project_id=project.id, image_id=i, reader=r)
                for i, r in deal_reads(image_ids, reader_names, reads_per_image)
            )
            audit.record(
                session,
                who,
                "project.create",
                "project",
                project.id,
                after={
                    "name": name,
                    "tasks": task_names,
                    "readers": reader_names,
                    "reads_per_image": reads_per_image,
                    "show_ai": show_ai,
                    "blinded": blinded,
                    "images": len(image_ids),
                    "filters": filters_json(images),
                },
            )
            project_id = project.id
    except IntegrityError as exc:
        raise ProjectError(f"project {name!r} could not be stored: {exc.orig}") from exc
    except DBAPIError as exc:
        if "permission denied" in str(exc.orig):
            raise _refused(db, exc, "create a project") from exc
        raise
    with db.read() as session:
        return _view(session, session.get_one(Project, project_id))


def set_status(db: Database, name: str, status: str, who: str) -> ProjectView:
    """Close a project (its blinding ends: readers see each other's decisions) or reopen it."""
    if status not in (ACTIVE, CLOSED):
        raise ProjectError(f"a project is {ACTIVE} or {CLOSED}, not {status!r}")
    try:
        with db.write() as session:
            project = get_project(session, name)
            before = project.status
            project.status = status
            audit.record(
                session,
                who,
                "project.status",
                "project",
                project.id,
                before={"status": before},
                after={"status": status},
            )
            project_id = project.id
    except DBAPIError as exc:
        if "permission denied" in str(exc.orig):
            raise _refused(db, exc, f"mark a project {status}") from exc
        raise
    with db.read() as session:
        return _view(session, session.get_one(Project, project_id))


def get_project(session: Session, name: str) -> Project:
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        known = sorted(session.scalars(select(Project.name)))
        listed = ", ".join(known) if known else "none yet (team project create)"
        raise ProjectError(f"no project named {name!r}; projects: {listed}")
    return project


def _view(session: Session, project: Project) -> ProjectView:
    readers = list(
        session.scalars(
            select(ProjectReader.reader)
            .where(ProjectReader.project_id == project.id)
            .order_by(ProjectReader.reader)
        )
    )
    images = session.scalar(
        select(func.count()).select_from(ProjectImage).where(ProjectImage.project_id == project.id)
    )
    return ProjectView(
        id=project.id,
        name=project.name,
        tasks=[str(t) for t in project.tasks],
        readers=readers,
        reads_per_image=project.reads_per_image,
        show_ai=project.show_ai,
        blinded=project.blinded,
        status=project.status,
        images=int(images or 0),
        filters=dict(project.filters or {}),
        created_by=project.created_by,
        created_at=project.created_at,
    )


def list_projects(session: Session) -> list[ProjectView]:
    return [_view(session, p) for p in session.scalars(select(Project).order_by(Project.id))]
