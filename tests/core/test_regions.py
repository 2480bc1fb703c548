"""Regions: stored in full-resolution pixels, clipped to the image, deleted with an audit row."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import AuditEvent
from skelex_desktop.core.review.labels import LabelError
from skelex_desktop.core.review.regions import Box, add_region, delete_region, list_regions
from tests.core.factories import add_image


def test_add_clip_list_and_delete(db: Database) -> None:
    with db.write() as s:
        image_id = add_image(s).id  # 64 x 64
    region_id, changes = add_region(db, image_id, "fracture", Box(50, -5, 90, 20), "dr.a")
    assert changes.images == {image_id}
    with db.read() as s:
        assert list_regions(s, image_id) == [(region_id, Box(50, 0, 64, 20))]
    delete_region(db, region_id, "dr.a")
    with db.read() as s:
        assert list_regions(s, image_id) == []
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.entity == "region")).all()
    assert actions == ["region.add", "region.delete"]
    with pytest.raises(LabelError, match="no current region"):
        delete_region(db, region_id, "dr.a")


def test_regions_outside_the_image_or_for_unknown_tasks_are_refused(db: Database) -> None:
    with db.write() as s:
        image_id = add_image(s).id
    with pytest.raises(LabelError, match="at least one pixel"):
        add_region(db, image_id, "fracture", Box(100, 100, 120, 130), "dr.a")
    with pytest.raises(LabelError, match="unknown task"):
        add_region(db, image_id, "nope", Box(1, 1, 5, 5), "dr.a")
    with pytest.raises(LabelError, match="no image"):
        add_region(db, 999, "fracture", Box(1, 1, 5, 5), "dr.a")
