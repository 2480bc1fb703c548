"""Small helpers that add real rows for tests that need an image without importing files."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from skelex_desktop.core.db.models import Image, Patient, Series, Study


def add_image(
    session: Session,
    sop: str = "1.2.826.0.1.1",
    frame: int = 0,
    patient_id: str = "P1",
    study_uid: str = "1.2.826.0.1",
    series_uid: str = "1.2.826.0.1.0",
) -> Image:
    """An image with its patient, study and series (reused when they exist)."""
    patient = session.scalar(select(Patient).where(Patient.patient_id == patient_id))
    if patient is None:
        patient = Patient(patient_id=patient_id, name="Test^Patient")
        session.add(patient)
    study = session.scalar(select(Study).where(Study.study_instance_uid == study_uid))
    if study is None:
        study = Study(patient=patient, study_instance_uid=study_uid)
        session.add(study)
    series = session.scalar(select(Series).where(Series.series_instance_uid == series_uid))
    if series is None:
        series = Series(study=study, series_instance_uid=series_uid, modality="CR")
        session.add(series)
    image = Image(
        series=series,
        sop_instance_uid=sop,
        frame=frame,
        file_path="/nowhere.dcm",
        content_hash=sop,
        rows=64,
        cols=64,
    )
    session.add(image)
    session.flush()
    return image
