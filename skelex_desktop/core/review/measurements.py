"""Measurements on an image: lengths and angles, in full-resolution pixel coordinates.

A length is in millimetres when the image has a pixel spacing and in pixels otherwise; the
record says which spacing was used (`PixelSpacing`: at the patient; `ImagerPixelSpacing`: at the
detector, magnified by the geometry; none). An angle is between two drawn lines, as a Cobb angle
is: the acute angle between their directions (0-90 degrees), so it does not depend on the order
or direction in which the lines were drawn. Measurements are stored with their value and unit,
audited, and deleted softly (an undo), like regions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from skelex_desktop.core.db import audit
from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Image, Measurement, utcnow
from skelex_desktop.core.domain import Changes
from skelex_desktop.core.review.labels import LabelError

Point = tuple[float, float]  # x, y in full-resolution pixels
NO_SPACING = "none"


class MeasurementError(ValueError):
    """A measurement that cannot be made (too few points, a zero-length line)."""


@dataclass(frozen=True)
class MeasurementView:
    """One stored measurement."""

    id: int
    image_id: int
    kind: str  # "length" | "angle"
    points: tuple[Point, ...]
    value: float
    unit: str  # "mm" | "px" | "deg"
    spacing_source: str
    reader: str
    created_at: datetime

    def label(self) -> str:
        """How the viewer and the findings panel show it."""
        if self.kind == "angle":
            return f"angle {self.value:.1f} deg"
        return f"length {self.value:.1f} {self.unit}" + (
            " (uncalibrated)" if self.unit == "px" else ""
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "image_id": self.image_id,
            "kind": self.kind,
            "points": [list(p) for p in self.points],
            "value": self.value,
            "unit": self.unit,
            "spacing_source": self.spacing_source,
            "reader": self.reader,
            "created_at": self.created_at.isoformat(),
        }


def length(a: Point, b: Point, spacing: tuple[float, float] | None) -> tuple[float, str]:
    """The distance from `a` to `b`: (mm, "mm") with `spacing` = (row, column) mm per pixel,
    else (pixels, "px")."""
    dx, dy = b[0] - a[0], b[1] - a[1]
    if spacing is None:
        return math.hypot(dx, dy), "px"
    row, col = spacing
    return math.hypot(dx * col, dy * row), "mm"


def angle(
    first: tuple[Point, Point],
    second: tuple[Point, Point],
    spacing: tuple[float, float] | None = None,
) -> float:
    """The acute angle in degrees between two lines (Cobb style), in patient geometry when the
    pixels are not square."""
    row, col = spacing if spacing is not None else (1.0, 1.0)
    directions = []
    for a, b in (first, second):
        dx, dy = (b[0] - a[0]) * col, (b[1] - a[1]) * row
        if math.hypot(dx, dy) == 0:
            raise MeasurementError("a line of an angle has no length: draw it again")
        directions.append(math.atan2(dy, dx))
    degrees = abs(math.degrees(directions[0] - directions[1])) % 180.0
    return min(degrees, 180.0 - degrees)


def _spacing(image: Image) -> tuple[tuple[float, float] | None, str]:
    if image.pixel_spacing_row and image.pixel_spacing_col:
        source = image.spacing_source or "PixelSpacing"
        return (float(image.pixel_spacing_row), float(image.pixel_spacing_col)), source
    return None, NO_SPACING


def add_measurement(
    db: Database, image_id: int, kind: str, points: list[Point], reader: str
) -> tuple[int, Changes]:
    """Store a length (two points) or an angle (four points: two lines) with its value."""
    with db.write() as session:
        image = session.get(Image, image_id)
        if image is None:
            raise LabelError(f"no image with id {image_id}")
        spacing, source = _spacing(image)
        if kind == "length" and len(points) == 2:
            value, unit = length(points[0], points[1], spacing)
        elif kind == "angle" and len(points) == 4:
            value, unit = angle((points[0], points[1]), (points[2], points[3]), spacing), "deg"
        else:
            raise MeasurementError(f"a {kind} needs {2 if kind == 'length' else 4} points")
        row = Measurement(
            image_id=image_id,
            kind=kind,
            points=[[float(x), float(y)] for x, y in points],
            value=float(value),
            unit=unit,
            spacing_source=source,
            reader=reader,
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            reader,
            "measurement.add",
            "measurement",
            row.id,
            before=None,
            after={"kind": kind, "value": row.value, "unit": unit, "spacing": source},
        )
        return row.id, Changes(images={image_id})


def delete_measurement(db: Database, measurement_id: int, reader: str) -> Changes:
    """Soft-delete a measurement (undo), with an audit row."""
    with db.write() as session:
        row = session.get(Measurement, measurement_id)
        if row is None or row.deleted_at is not None:
            raise MeasurementError(f"no measurement with id {measurement_id}")
        row.deleted_at = utcnow()
        audit.record(
            session, reader, "measurement.delete", "measurement", row.id, {"value": row.value}, None
        )
        return Changes(images={row.image_id})


def list_measurements(
    session: Session, image_id: int | None = None, image_ids: Sequence[int] | None = None
) -> list[MeasurementView]:
    """The measurements not deleted, of one image, of `image_ids`, or of all; oldest first."""
    query = select(Measurement).where(Measurement.deleted_at.is_(None)).order_by(Measurement.id)
    if image_id is not None:
        query = query.where(Measurement.image_id == image_id)
    if image_ids is not None:
        query = query.where(Measurement.image_id.in_(list(image_ids)))
    return [
        MeasurementView(
            m.id,
            m.image_id,
            m.kind,
            tuple((float(p[0]), float(p[1])) for p in m.points),
            m.value,
            m.unit,
            m.spacing_source,
            m.reader,
            m.created_at,
        )
        for m in session.scalars(query)
    ]
