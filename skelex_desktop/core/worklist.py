"""Worklist queries: one image per row with its patient and study, filtered, sorted, paged.

One SELECT with joins fetches the page (the study's image count is a correlated subquery on
indexed columns) and one COUNT gives the total; no per-row queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from skelex_desktop.core.db.models import Image, Patient, Series, Study


@dataclass
class WorklistQuery:
    """Filters (None: any), sort key (see `SORT_KEYS`) and page window."""

    status: str | Sequence[str] | None = None
    modality: str | None = None
    body_part: str | None = None
    laterality: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    text: str | None = None
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


SORT_KEYS: dict[str, ColumnElement] = {
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
SORT_KEYS_EXTRA = ("images_in_study",)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filters(query: WorklistQuery) -> tuple[list[ColumnElement[bool]], bool]:
    """WHERE conditions, and whether they touch study or patient columns."""
    conditions: list[ColumnElement[bool]] = []
    needs_study = False
    if query.status:
        statuses = [query.status] if isinstance(query.status, str) else list(query.status)
        conditions.append(Image.status.in_(statuses))
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
    text = (query.text or "").strip()
    if text:
        pattern = f"%{_escape_like(text)}%"
        conditions.append(
            or_(
                Patient.patient_id.ilike(pattern, escape="\\"),
                Patient.name.ilike(pattern, escape="\\"),
                Study.accession_number.ilike(pattern, escape="\\"),
                Image.body_part.ilike(pattern, escape="\\"),
            )
        )
        needs_study = True
    return conditions, needs_study


def _joined(statement: Select) -> Select:
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
    conditions, needs_study = _filters(query)
    where = and_(*conditions) if conditions else None

    count = select(func.count(Image.id)).select_from(Image)
    if needs_study:
        count = _joined(count)
    if where is not None:
        count = count.where(where)
    total = int(session.scalar(count) or 0)
    if total == 0 or query.limit <= 0:
        return WorklistPage(rows=[], total=total)

    in_study = _images_in_study().label("images_in_study")
    key = in_study if query.sort == "images_in_study" else SORT_KEYS[query.sort]
    order = key.desc().nulls_last() if query.descending else key.asc().nulls_last()
    tie = Image.id.desc() if query.descending else Image.id.asc()
    statement = _joined(
        select(
            Image.id,
            Patient.patient_id,
            Patient.name,
            Study.study_date,
            Image.body_part,
            Image.view,
            Image.laterality,
            Image.modality,
            Image.status,
            Image.ai_score,
            Image.reader,
            Image.thumbnail_path,
            Study.study_instance_uid,
            in_study,
        ).select_from(Image)
    )
    if where is not None:
        statement = statement.where(where)
    statement = statement.order_by(order, tie).offset(max(0, query.offset)).limit(query.limit)
    rows = [WorklistRow(*row) for row in session.execute(statement)]
    return WorklistPage(rows=rows, total=total)
