"""Regions drawn by readers, in full-resolution pixel coordinates of the image."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from skelex_desktop.core.db import audit
from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Image, Region, Task, utcnow
from skelex_desktop.core.domain import Changes
from skelex_desktop.core.review.labels import LabelError, get_task


@dataclass(frozen=True)
class Box:
    """An axis-aligned box [x0, x1) x [y0, y1) in image pixels."""

    x0: float
    y0: float
    x1: float
    y1: float

    def to_geometry(self) -> dict[str, Any]:
        return {"type": "box", "x0": self.x0, "y0": self.y0, "x1": self.x1, "y1": self.y1}

    @classmethod
    def from_geometry(cls, geometry: dict[str, Any]) -> Box:
        return cls(geometry["x0"], geometry["y0"], geometry["x1"], geometry["y1"])


def add_region(
    db: Database, image_id: int, task_name: str, box: Box, reader: str, value: Any = None
) -> tuple[int, Changes]:
    """Store a box region (clipped to the image); returns its id and what changed."""
    with db.write() as session:
        image = session.get(Image, image_id)
        if image is None:
            raise LabelError(f"no image with id {image_id}")
        task = get_task(session, task_name)
        (x0, x1), (y0, y1) = sorted((box.x0, box.x1)), sorted((box.y0, box.y1))
        x0, x1 = max(0.0, x0), min(float(image.cols), x1)
        y0, y1 = max(0.0, y0), min(float(image.rows), y1)
        if x1 - x0 < 1 or y1 - y0 < 1:
            raise LabelError("a region must cover at least one pixel of the image")
        region_id = store_region(session, image_id, task, Box(x0, y0, x1, y1), reader, value)
    return region_id, Changes(images={image_id}, tasks={task_name})


def store_region(
    session: Session,
    image_id: int,
    task: Task,
    box: Box,
    reader: str,
    value: Any = None,
    provenance: dict[str, Any] | None = None,
) -> int:
    """Add a checked box region and its audit row to the caller's transaction; its id.
    `provenance` (e.g. the file it was imported from) is recorded in the audit row only."""
    region = Region(
        image_id=image_id, task_id=task.id, geometry=box.to_geometry(), value=value, reader=reader
    )
    session.add(region)
    session.flush()
    after = region.geometry if provenance is None else {**region.geometry, **provenance}
    audit.record(session, reader, "region.add", "region", region.id, after=after)
    return region.id


def delete_region(db: Database, region_id: int, reader: str) -> Changes:
    """Mark a region deleted (kept for the audit trail)."""
    with db.write() as session:
        region = session.get(Region, region_id)
        if region is None or region.deleted_at is not None:
            raise LabelError(f"no current region with id {region_id}")
        region.deleted_at = utcnow()
        audit.record(session, reader, "region.delete", "region", region.id, before=region.geometry)
        image_id = region.image_id
    return Changes(images={image_id})


def list_regions(session: Session, image_id: int) -> list[tuple[int, Box]]:
    """Current regions of an image as (id, box)."""
    rows = session.execute(
        select(Region.id, Region.geometry)
        .where(Region.image_id == image_id, Region.deleted_at.is_(None))
        .order_by(Region.id)
    )
    return [(rid, Box.from_geometry(geometry)) for rid, geometry in rows]
