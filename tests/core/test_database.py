"""Database: migrations agree with the models; constraints, pragmas and the append-only audit."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.migrate import current_revision, head_revision, upgrade
from skelex_desktop.core.db.models import AuditEvent, Base, Label, Patient, Task
from skelex_desktop.core.review.labels import LabelError, set_label
from tests.conftest import DATA
from tests.core.factories import add_image


def test_migrations_match_models(db: Database) -> None:
    with db.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []
    assert current_revision(db.engine) == head_revision()


def test_sqlite_pragmas(db: Database) -> None:
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 1000
        # FULL (2): in WAL mode every commit syncs the log, so a stored decision survives a
        # power loss (NORMAL, 1, may lose the last commits); cost: bench/durability.py
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2
    with db.write() as session:  # the writer's connection too
        assert session.execute(text("PRAGMA synchronous")).scalar() == 2


def test_label_for_missing_image_is_refused(db: Database) -> None:
    with pytest.raises(LabelError, match="no image with id 999"), db.write() as s:
        set_label(s, 999, "fracture", 1, "dr.test")
    with pytest.raises(IntegrityError), db.write() as s:
        task_id = s.scalar(select(Task.id).where(Task.name == "fracture"))
        s.add(Label(image_id=999, task_id=task_id, value=1, reader="x"))


def test_label_for_unknown_task_is_refused(db: Database) -> None:
    with db.write() as s:
        image_id = add_image(s).id
    with pytest.raises(LabelError, match="unknown task 'no_such_task'"), db.write() as s:
        set_label(s, image_id, "no_such_task", 1, "dr.test")
    with pytest.raises(IntegrityError), db.write() as s:
        s.add(Label(image_id=image_id, task_id=4242, value=1, reader="x"))


def test_audit_events_cannot_be_updated_or_deleted(db: Database) -> None:
    with db.write() as s:
        event = AuditEvent(who="a", action="x", entity="e", entity_id=1)
        s.add(event)
    with pytest.raises(PermissionError, match="append-only"), db.write() as s:
        s.get(AuditEvent, event.id).who = "mallory"
    for sql in (
        "UPDATE audit_events SET who = 'mallory'",
        "DELETE FROM audit_events",
    ):
        with (
            pytest.raises((IntegrityError, OperationalError), match="append-only"),
            db.engine.begin() as conn,
        ):
            conn.execute(text(sql))
    with db.read() as s:
        assert s.get(AuditEvent, event.id).who == "a"


def test_unique_sop_frame_and_patient(db: Database) -> None:
    with db.write() as s:
        add_image(s, sop="1.2.3", frame=0)
    with pytest.raises(IntegrityError), db.write() as s:
        add_image(s, sop="1.2.3", frame=0, series_uid="9.9")
    with pytest.raises(IntegrityError), db.write() as s:
        s.add(Patient(patient_id="P1"))
        s.add(Patient(patient_id="P1"))


def test_stored_old_database_is_upgraded_after_a_backup(tmp_path: Path) -> None:
    old = tmp_path / "skelex.sqlite3"
    shutil.copy(DATA / "skelex-0001.sqlite3", old)
    db = Database(f"sqlite:///{old}")
    try:
        assert current_revision(db.engine) == "0001"
        result = upgrade(db.engine)
        assert (result.before, result.after) == ("0001", head_revision())
        assert result.backup is not None and result.backup.exists()
        backup = sqlite3.connect(result.backup)
        assert backup.execute("SELECT version_num FROM alembic_version").fetchone() == ("0001",)
        assert backup.execute("SELECT count(*) FROM labels").fetchone() == (1,)
        backup.close()
        with db.read() as s:
            label = s.scalars(select(Label)).one()
            assert (label.reader, label.value) == ("dr.old", 1)
        with (
            pytest.raises((IntegrityError, OperationalError), match="append-only"),
            db.engine.begin() as conn,
        ):
            conn.execute(text("DELETE FROM audit_events"))
        again = upgrade(db.engine)
        assert again.backup is None and again.before == again.after
    finally:
        db.dispose()


def test_an_import_killed_mid_way_is_marked_failed_on_next_start(settings) -> None:
    from skelex_desktop.core.db.models import ImportJob
    from skelex_desktop.core.workspace import open_workspace

    ws = open_workspace(settings)
    with ws.db.write() as s:
        s.add(ImportJob(sources=["/x"], state="running"))
    ws.close()
    ws = open_workspace(settings)
    try:
        with ws.db.read() as s:
            job = s.scalars(select(ImportJob)).one()
            assert job.state == "failed" and job.finished_at is not None
            assert s.scalar(select(AuditEvent).where(AuditEvent.action == "import.interrupted"))
    finally:
        ws.close()
