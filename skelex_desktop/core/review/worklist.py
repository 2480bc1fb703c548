"""Worklist queries: one image per row with its patient and study, filtered, sorted, paged.

Three statements per page, whatever its size: a COUNT for the total, a SELECT of the page's
image ids (joining only what the filter and sort need, so indexes drive it), and one SELECT
with joins for those rows (the study's image count is a correlated subquery on indexed
columns). No per-row queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import CTE, ColumnElement, Select, and_, case, func, or_, select, union
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from skelex_desktop.core.db.models import Assignment, Image, Patient, Project, Series, Study
from skelex_desktop.core.db.session_user import session_user, team_mode
from skelex_desktop.core.review.reads import reader_column, reader_status


@dataclass
class WorklistQuery:
    """Filters (None: any), sort key (see `SORT_KEYS`) and page window."""

    status: str | Sequence[str] | None = None
    image_ids: Sequence[int] | None = None
    modality: str | None = None
    body_part: str | None = None
    laterality: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    text: str | None = None
    # team mode: only the images assigned to this reader in active projects; None: the
    # connected user's assignments when they have any (a reader), else every image
    assigned_to: str | None = None
    sort: str = "study_date"
    descending: bool = True
    offset: int = 0
    limit: int = 100


@dataclass(frozen=True)
class WorklistRow:
    image_id: int
    patient_id: str
    patient_name: str
    study_date: date | None
    body_part: str
    view: str
    laterality: str
    modality: str
    status: str
    ai_score: float | None
    reader: str
    thumbnail_path: str
    study_uid: str
    images_in_study: int

    def to_json(self) -> dict[str, Any]:
        """The row as JSON-ready values (dates as ISO strings)."""
        data = asdict(self)
        data["study_date"] = self.study_date.isoformat() if self.study_date else None
        return data


@dataclass
class WorklistPage:
    rows: list[WorklistRow] = field(default_factory=list)
    total: int = 0


def _images_in_study() -> ColumnElement[int]:
    counted_image = aliased(Image)
    counted_series = aliased(Series)
    return (
        select(func.count(counted_image.id))
        .join(counted_series, counted_image.series_id == counted_series.id)
        .where(counted_series.study_id == Study.id)
        .scalar_subquery()
    )


SORT_KEYS: dict[str, InstrumentedAttribute[Any]] = {
    "image_id": Image.id,
    "patient_id": Patient.patient_id,
    "patient_name": Patient.name,
    "study_date": Study.study_date,
    "body_part": Image.body_part,
    "view": Image.view,
    "laterality": Image.laterality,
    "modality": Image.modality,
    "status": Image.status,
    "ai_score": Image.ai_score,
    "reader": Image.reader,
    "imported_at": Image.imported_at,
    "study_uid": Study.study_instance_uid,
}
SORT_KEYS_EXTRA = ("images_in_study", "rank")  # rank: the order of `image_ids` itself


SORT_MATCHES_UP_TO = 5_000  # text matches collected and sorted; more: walk in sort order


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class _TextSearch:
    """The images whose patient id/name, accession or body part contains a text.

    Patients and studies are searched in their own (small) tables, body parts among their few
    distinct values (`_body_parts_like`); images are then reached by key (series, body part),
    never pattern-matched row by row. Few matches are best collected first and sorted
    (`matches`, materialized); many are best found by walking the images in sort order until
    the page is full (`condition`). At 100k images (bench/ingest.py): a name 161 -> ~25 ms.
    """

    def __init__(self, text: str) -> None:
        pattern = f"%{_escape_like(text)}%"
        patients = select(Patient.id).where(
            or_(
                Patient.patient_id.ilike(pattern, escape="\\"),
                Patient.name.ilike(pattern, escape="\\"),
            )
        )
        studies = select(Study.id).where(
            or_(
                Study.patient_id.in_(patients),
                Study.accession_number.ilike(pattern, escape="\\"),
            )
        )
        self.series = select(Series.id).where(Series.study_id.in_(studies))
        self.body_parts = _body_parts_like(pattern)
        self.matches: CTE = (
            union(
                select(Image.id.label("id")).where(Image.series_id.in_(self.series)),
                select(Image.id.label("id")).where(Image.body_part.in_(self.body_parts)),
            )
            .cte("text_matches")
            .prefix_with("MATERIALIZED")
        )

    @property
    def condition(self) -> ColumnElement[bool]:
        return or_(Image.series_id.in_(self.series), Image.body_part.in_(self.body_parts))


def _body_parts_like(pattern: str) -> Select[tuple[str]]:
    """The distinct body parts matching `pattern`, found by one index seek per distinct value
    (a loose index scan as a recursive CTE) instead of reading every image's body part."""
    parts = select(func.min(Image.body_part).label("part")).cte("body_parts", recursive=True)
    following = select(func.min(Image.body_part)).where(Image.body_part > parts.c.part)
    parts = parts.union_all(select(following.scalar_subquery()).where(parts.c.part.is_not(None)))
    return select(parts.c.part).where(parts.c.part.ilike(pattern, escape="\\"))


def _assigned(reader: str) -> Select[int]:
    """The images assigned to `reader` in active projects."""
    return (
        select(Assignment.image_id)
        .join(Project, Project.id == Assignment.project_id)
        .where(Assignment.reader == reader, Project.status == "active")
    )


def assigned_reader(session: Session) -> str | None:
    """In team mode, the connected user when they have reads assigned in an active project
    (their worklist is those images); None otherwise (single user, adjudicator, admin)."""
    if not team_mode(session):
        return None
    user = session_user(session)
    if user is None or session.scalar(_assigned(user).limit(1)) is None:
        return None
    return user


def _filters(
    query: WorklistQuery, assigned_to: str | None = None
) -> tuple[list[ColumnElement[bool]], bool]:
    """WHERE conditions, and whether they need the study (and patient) joined (free text is
    not a condition: see `_text_matches`)."""
    conditions: list[ColumnElement[bool]] = []
    needs_study = False
    if assigned_to is not None:
        conditions.append(Image.id.in_(_assigned(assigned_to)))
    if query.image_ids is not None:
        conditions.append(Image.id.in_(list(query.image_ids)))
    if query.status:
        statuses = [query.status] if isinstance(query.status, str) else list(query.status)
        status = Image.status if assigned_to is None else reader_status(assigned_to)
        conditions.append(status.in_(statuses))
    if query.modality:
        conditions.append(Image.modality == query.modality)
    if query.body_part:
        conditions.append(Image.body_part == query.body_part)
    if query.laterality:
        conditions.append(Image.laterality == query.laterality)
    if query.date_from is not None:
        conditions.append(Study.study_date >= query.date_from)
        needs_study = True
    if query.date_to is not None:
        conditions.append(Study.study_date <= query.date_to)
        needs_study = True
    return conditions, needs_study


_Statement = TypeVar("_Statement", bound="Select[*tuple[Any, ...]]")  # any SELECT


def _joined(statement: _Statement) -> _Statement:
    return (
        statement.join(Series, Image.series_id == Series.id)
        .join(Study, Series.study_id == Study.id)
        .join(Patient, Study.patient_id == Patient.id)
    )


def query_worklist(session: Session, query: WorklistQuery) -> WorklistPage:
    """The page of worklist rows for `query` and the total number of matching images."""
    if query.sort not in SORT_KEYS and query.sort not in SORT_KEYS_EXTRA:
        known = ", ".join(sorted([*SORT_KEYS, *SORT_KEYS_EXTRA]))
        raise ValueError(f"unknown worklist sort key {query.sort!r}; use one of {known}")
    assigned_to = query.assigned_to or assigned_reader(session)
    conditions, needs_study = _filters(query, assigned_to)
    where = and_(*conditions) if conditions else None
    text = (query.text or "").strip()
    search = _TextSearch(text) if text else None

    count = select(func.count(Image.id)).select_from(Image)
    if search is not None:
        count = count.join(search.matches, search.matches.c.id == Image.id)
    if needs_study:
        count = _joined(count)
    if where is not None:
        count = count.where(where)
    total = int(session.scalar(count) or 0)
    if total == 0 or query.limit <= 0:
        return WorklistPage(rows=[], total=total)

    # 1) the ids of the page: only the joins the filter and the sort need
    if query.sort == "images_in_study":
        key: ColumnElement[Any] | InstrumentedAttribute[Any] = _images_in_study()
        needs_join = True
    elif query.sort == "rank":
        if not query.image_ids:
            raise ValueError("sorting by rank needs the ranked image ids")
        key = case({image_id: i for i, image_id in enumerate(query.image_ids)}, value=Image.id)
        needs_join = needs_study
    elif assigned_to is not None and query.sort in ("status", "reader"):  # their own read
        key = (reader_status if query.sort == "status" else reader_column)(assigned_to)
        needs_join = needs_study
    else:
        key = SORT_KEYS[query.sort]
        needs_join = needs_study or key.table is not Image.__table__
    order = key.desc().nulls_last() if query.descending else key.asc().nulls_last()
    tie = Image.id.desc() if query.descending else Image.id.asc()
    ids_query = select(Image.id).select_from(Image)
    if search is not None and total <= SORT_MATCHES_UP_TO:
        ids_query = ids_query.join(search.matches, search.matches.c.id == Image.id)
    elif search is not None:
        ids_query = ids_query.where(search.condition)
    if needs_join:
        ids_query = _joined(ids_query)
    if where is not None:
        ids_query = ids_query.where(where)
    ids_query = ids_query.order_by(order, tie).offset(max(0, query.offset)).limit(query.limit)
    page_ids = list(session.scalars(ids_query))
    if not page_ids:
        return WorklistPage(rows=[], total=total)

    # 2) the rows of those ids, with patient, study and the study's image count (14 columns:
    # more than SQLAlchemy types one by one); an assigned reader sees their own read state and
    # name, never the shared status and reader of a project's image
    status: ColumnElement[str] | InstrumentedAttribute[str] = Image.status
    reader: ColumnElement[str] | InstrumentedAttribute[str] = Image.reader
    if assigned_to is not None:
        status, reader = reader_status(assigned_to), reader_column(assigned_to)
    statement: Select[*tuple[Any, ...]] = _joined(
        select(
            Image.id,
            Patient.patient_id,
            Patient.name,
            Study.study_date,
            Image.body_part,
            Image.view,
            Image.laterality,
            Image.modality,
            status,
            Image.ai_score,
            reader,
            Image.thumbnail_path,
            Study.study_instance_uid,
            _images_in_study(),
        ).select_from(Image)
    ).where(Image.id.in_(page_ids))
    by_id = {row[0]: WorklistRow(*row) for row in session.execute(statement)}
    return WorklistPage(rows=[by_id[i] for i in page_ids if i in by_id], total=total)
