"""A reader's own read state in team mode: their assignment moves, not the shared image.

In a project several readers read one image, so the image's shared `status` and `reader` cannot
say where each of them is: one reader's Enter would confirm the image for everyone, and the
worklist would name who read a blinded image. While an active project holds an image, a
reader's decision moves their own assignment (assigned -> in_review; Enter -> done; undoing
Enter puts it back) and leaves the image's status and reader alone; the image is confirmed by
its final labels (adjudication). A reader's worklist and review panel show their own state in
the worklist's words: done -> confirmed, in_review -> in_review, assigned -> the image's
analysis state (new or analysed). Outside projects, and on SQLite, nothing changes.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, case, func, literal, select, update
from sqlalchemy.orm import Session

from skelex_desktop.core.db.models import Assignment, Image, Project, ProjectImage, utcnow
from skelex_desktop.core.db.session_user import session_user, team_mode
from skelex_desktop.core.domain import ImageStatus

ASSIGNED = "assigned"
IN_REVIEW = "in_review"
DONE = "done"
READ_STATES = (ASSIGNED, IN_REVIEW, DONE)
_RANK = {ASSIGNED: 0, IN_REVIEW: 1, DONE: 2}


def held_by_project(session: Session, image_id: int) -> bool:
    """Whether an active project holds the image (team mode only: SQLite is single-user, and
    one reader's state there is the image's)."""
    if not team_mode(session):
        return False
    return (
        session.scalar(
            select(ProjectImage.image_id)
            .join(Project, Project.id == ProjectImage.project_id)
            .where(ProjectImage.image_id == image_id, Project.status == "active")
            .limit(1)
        )
        is not None
    )


def _active(reader: str, image_id: int | None = None) -> list[ColumnElement[bool]]:
    conditions = [
        Assignment.reader == reader,
        Assignment.project_id.in_(select(Project.id).where(Project.status == "active")),
    ]
    if image_id is not None:
        conditions.append(Assignment.image_id == image_id)
    return conditions


def mark(session: Session, image_id: int, reader: str, state: str, *, only_from: str = "") -> None:
    """Move `reader`'s assignments of the image in active projects to `state` (those in
    `only_from` only, when given), with the time."""
    if state not in READ_STATES:
        raise ValueError(f"a read state is one of {', '.join(READ_STATES)}, not {state!r}")
    statement = update(Assignment).where(*_active(reader, image_id), Assignment.status != state)
    if only_from:
        statement = statement.where(Assignment.status == only_from)
    session.execute(
        statement.values(status=state, read_at=utcnow()).execution_options(
            synchronize_session=False
        )
    )


def state_of_status(status: str) -> str:
    """The read state a worklist status stands for (undoing Enter restores the state before)."""
    if status == ImageStatus.CONFIRMED:
        return DONE
    return IN_REVIEW if status == ImageStatus.IN_REVIEW else ASSIGNED


def _rank(reader: str) -> ColumnElement[int]:
    """The reader's most advanced read state of the worklist's image (NULL: not assigned)."""
    ranked = case({state: rank for state, rank in _RANK.items()}, value=Assignment.status, else_=0)
    return (
        select(func.max(ranked))
        .where(*_active(reader), Assignment.image_id == Image.id)
        .correlate(Image)
        .scalar_subquery()
    )


def reader_status(reader: str) -> ColumnElement[str]:
    """The worklist status of an image as `reader` sees it (their own read state)."""
    rank = _rank(reader)
    return case(
        (rank == _RANK[DONE], literal(ImageStatus.CONFIRMED.value)),
        (rank == _RANK[IN_REVIEW], literal(ImageStatus.IN_REVIEW.value)),
        (Image.status == ImageStatus.NEW.value, literal(ImageStatus.NEW.value)),
        else_=literal(ImageStatus.ANALYSED.value),
    )


def reader_column(reader: str) -> ColumnElement[str]:
    """The worklist's reader column as `reader` sees it: their own name once they read it."""
    return case((_rank(reader) > _RANK[ASSIGNED], literal(reader)), else_=literal(""))


def own_status(session: Session, image_id: int, shared: str) -> str:
    """The status the connected reader sees for one image: their own read state when they are
    assigned it in an active project, else the shared `shared` status."""
    if not team_mode(session):
        return shared
    user = session_user(session)
    if user is None:
        return shared
    status = session.scalar(
        select(reader_status(user))
        .select_from(Image)
        .where(
            Image.id == image_id, Image.id.in_(select(Assignment.image_id).where(*_active(user)))
        )
    )
    return shared if status is None else str(status)
