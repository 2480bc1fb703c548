"""Lengths and angles: values in mm or px by the image's spacing, Cobb-style angles, stored and
undone through the review session, and exported in CSV and JSONL."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import select

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import AuditEvent, Image
from skelex_desktop.core.review.measurements import (
    MeasurementError,
    angle,
    length,
    list_measurements,
)
from skelex_desktop.core.review.session import ReviewSession
from tests.core.factories import add_image


def test_length_and_angle_values() -> None:
    assert length((0, 0), (30, 40), None) == (50.0, "px")
    value, unit = length((0, 0), (30, 40), (0.2, 0.1))  # rows 0.2 mm, columns 0.1 mm
    assert unit == "mm" and math.isclose(value, math.hypot(3.0, 8.0))
    horizontal, vertical = ((0, 0), (10, 0)), ((5, 5), (5, 25))
    assert math.isclose(angle(horizontal, vertical), 90.0)
    rising = ((0, 0), (10, -10 * math.tan(math.radians(30))))
    assert math.isclose(angle(horizontal, rising), 30.0)
    # Cobb style: neither the order of the lines nor the direction they were drawn matters
    backwards = (rising[1], rising[0])
    assert math.isclose(angle(backwards, horizontal), 30.0)
    assert math.isclose(angle(((0, 0), (10, 10)), ((0, 0), (-10, 10))), 90.0)
    with pytest.raises(MeasurementError, match="no length"):
        angle(horizontal, ((3, 3), (3, 3)))


def test_measurements_through_the_session_with_spacing_and_undo(db: Database) -> None:
    with db.write() as s:
        calibrated = add_image(s, sop="1.2.8.1")
        calibrated.pixel_spacing_row = calibrated.pixel_spacing_col = 0.5
        calibrated.spacing_source = "PixelSpacing"
        plain = add_image(s, sop="1.2.8.2").id
        calibrated_id = calibrated.id
    session = ReviewSession(db, "dr.m")
    session.open(calibrated_id)
    session.measure("length", [(0.0, 0.0), (0.0, 100.0)])
    session.measure("angle", [(0.0, 0.0), (10.0, 0.0), (0.0, 0.0), (0.0, 10.0)])
    assert session.wait(10)
    shown = session.measurements()
    assert [(m.kind, m.value, m.unit, m.spacing_source) for m in shown] == [
        ("length", 50.0, "mm", "PixelSpacing"),
        ("angle", 90.0, "deg", "PixelSpacing"),
    ]
    assert shown[0].label() == "length 50.0 mm" and shown[1].label() == "angle 90.0 deg"
    session.open(plain)
    session.measure("length", [(0.0, 0.0), (3.0, 4.0)])
    assert session.wait(10)
    (uncalibrated,) = session.measurements()
    assert (uncalibrated.value, uncalibrated.unit, uncalibrated.spacing_source) == (
        5.0,
        "px",
        "none",
    )
    assert uncalibrated.label() == "length 5.0 px (uncalibrated)"
    assert session.undo() and session.wait(10)
    assert session.measurements() == []
    with db.read() as s:
        actions = list(
            s.scalars(select(AuditEvent.action).where(AuditEvent.entity == "measurement"))
        )
        assert actions == ["measurement.add"] * 3 + ["measurement.delete"]
        assert len(list_measurements(s)) == 2 and s.get(Image, plain) is not None
    session.close()
