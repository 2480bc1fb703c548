"""Studies, not single images: the other views of an image's study, and the patient's earlier
studies of the same body part (the prior a radiologist compares with)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from skelex_desktop.core.db.models import Image, Series, Study
from skelex_desktop.core.review.decisions import ImageDetails, image_details


@dataclass(frozen=True)
class PriorStudy:
    """An earlier study of the same patient that shows the same body part."""

    study_uid: str
    study_date: date | None
    images: tuple[ImageDetails, ...]


def _study_of(session: Session, image_id: int) -> tuple[int, int, date | None, str, str]:
    row = session.execute(
        select(Study.id, Study.patient_id, Study.study_date, Image.body_part, Image.laterality)
        .join(Series, Series.study_id == Study.id)
        .join(Image, Image.series_id == Series.id)
        .where(Image.id == image_id)
    ).one()
    return row[0], row[1], row[2], row[3], row[4]


def _images_of(session: Session, study_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Image.id)
            .join(Series, Image.series_id == Series.id)
            .where(Series.study_id == study_id)
            .order_by(func.coalesce(Series.series_number, 0), Image.sop_instance_uid, Image.frame)
        )
    )


def study_images(session: Session, image_id: int) -> list[ImageDetails]:
    """Every image of `image_id`'s study (the image itself included), in series order."""
    study_id = _study_of(session, image_id)[0]
    return [image_details(session, i) for i in _images_of(session, study_id)]


def prior_studies(session: Session, image_id: int) -> list[PriorStudy]:
    """The patient's studies before `image_id`'s that hold an image of the same body part and
    side (an image without laterality matches either), newest first (a study without a date
    counts as older than any dated one)."""
    study_id, patient_pk, study_date, body_part, side = _study_of(session, image_id)
    candidates = select(Study.id, Study.study_instance_uid, Study.study_date).where(
        Study.patient_id == patient_pk, Study.id != study_id
    )
    if study_date is not None:
        candidates = candidates.where((Study.study_date < study_date) | Study.study_date.is_(None))
    priors = []
    for prior_id, uid, when in session.execute(candidates):
        ids = _images_of(session, prior_id)
        shown = [image_details(session, i) for i in ids]
        same = [
            d
            for d in shown
            if d.body_part == body_part and (not side or not d.laterality or d.laterality == side)
        ]
        if same or not body_part:
            priors.append(PriorStudy(uid, when, tuple(same or shown)))
    return sorted(priors, key=lambda p: p.study_date or date.min, reverse=True)


def matching_view(images: tuple[ImageDetails, ...], like: ImageDetails) -> ImageDetails:
    """The image of `images` that best matches `like`: same view and laterality, else same
    view, else the first."""
    same_view = [d for d in images if d.view == like.view]
    same_side = [d for d in same_view if d.laterality == like.laterality]
    return (same_side or same_view or list(images))[0]


@dataclass(frozen=True)
class Companion:
    """An image shown beside the open one, and the caption that says what it is."""

    image: ImageDetails
    caption: str
    prior: bool = False


def companions(session: Session, image_id: int, with_prior: bool, most: int = 3) -> list[Companion]:
    """What to show beside `image_id`: with `with_prior`, the newest prior study's matching view
    first; then the other images of its study; `most` at the most."""
    current = image_details(session, image_id)
    out: list[Companion] = []
    if with_prior:
        priors = prior_studies(session, image_id)
        if priors:
            shown = matching_view(priors[0].images, current)
            when = priors[0].study_date.isoformat() if priors[0].study_date else "undated"
            out.append(Companion(shown, f"PRIOR {when} {_describe(shown)}", prior=True))
    for other in study_images(session, image_id):
        if other.image_id != image_id and len(out) < most:
            out.append(Companion(other, _describe(other)))
    return out[:most]


def _describe(image: ImageDetails) -> str:
    return " ".join(part for part in (image.laterality, image.view, image.body_part) if part)
