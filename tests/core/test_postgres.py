"""The shared-database case: the same migrations and rules on a real PostgreSQL server."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, ProgrammingError

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Base, Image, ImportFileResult, Label, Patient
from skelex_desktop.core.review.labels import confirm_label
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import Workspace, open_workspace
from tests.core.factories import add_image
from tests.core.postgres_server import find_pg_bin, postgres_cluster
from tests.core.test_ingest_helpers import make_dicom, run_import, write_raster

pytestmark = pytest.mark.skipif(find_pg_bin() is None, reason="PostgreSQL server not installed")


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with (
        tempfile.TemporaryDirectory(prefix="skelex-pg-") as tmp,
        postgres_cluster(Path(tmp) / "pg") as url,
    ):
        yield url


@pytest.fixture
def pg_workspace(pg_url: str, tmp_path: Path) -> Iterator[Workspace]:
    ws = open_workspace(Settings(data_dir=tmp_path, db_url=pg_url, reader="dr.pg"))
    yield ws
    with ws.db.engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    ws.close()


def test_migrations_match_models_on_postgres(pg_workspace: Workspace) -> None:
    with pg_workspace.db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_rules_hold_on_postgres(pg_workspace: Workspace) -> None:
    db: Database = pg_workspace.db
    with db.write() as s:
        image_id = add_image(s).id
    confirm_label(db, image_id, "kl_grade", 2, "dr.pg")
    confirm_label(db, image_id, "kl_grade", 3, "dr.pg")
    with db.read() as s:
        assert s.scalars(select(Label.value).order_by(Label.id)).all() == ["2", "3"]
    with pytest.raises(IntegrityError), db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO labels (image_id, task_id, uncertain, source, reader, "
                "prediction_relation, created_at) VALUES (999, 1, false, 'human', 'x', 'none', now())"
            )
        )
    with pytest.raises(ProgrammingError, match="append-only"), db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET who = 'mallory'"))


def test_import_writes_and_dedups_on_postgres(pg_workspace: Workspace, tmp_path: Path) -> None:
    """The import writer's multi-row INSERT ... RETURNING works on PostgreSQL too."""
    folder = tmp_path / "in"
    for i in range(5):
        make_dicom(folder / f"a{i}.dcm", PatientID="PG1" if i < 3 else "PG2")
    write_raster(folder / "P9" / "S1" / "x.png", np.full((20, 30), 100, np.uint8))
    db = pg_workspace.db
    first = run_import(db, pg_workspace.settings.data_dir, [folder])
    assert first.summary() == "imported 6, duplicates 0, skipped 0, failed 0"
    assert not any(r.reason for r in first.files)  # no batch fell back to file-by-file writes
    again = run_import(db, pg_workspace.settings.data_dir, [folder])
    assert again.summary() == "imported 0, duplicates 6, skipped 0, failed 0"
    assert [r.image_ids for r in again.files] == [r.image_ids for r in first.files]
    with db.read() as s:
        assert s.scalar(select(func.count(Image.id))) == 6
        assert s.scalar(select(func.count(Patient.id))) == 3
        assert s.scalar(select(func.count(ImportFileResult.id))) == 12


def test_long_identifiers_on_postgres(pg_workspace: Workspace, tmp_path: Path) -> None:
    """PostgreSQL enforces VARCHAR lengths: whole 76-character Patient IDs are stored (two
    patients, not one), a long name is cut with a note, an over-long UID refuses its file, and
    no batch falls back to file-by-file writes with a database error."""
    import warnings

    folder = tmp_path / "in"
    prefix = "X" * 64
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about values longer than their VR
        make_dicom(folder / "a.dcm", PatientID=prefix + "-PATIENT-ONE", PatientName="One^Alice")
        make_dicom(folder / "b.dcm", PatientID=prefix + "-PATIENT-TWO", PatientName="Two^Bob")
        make_dicom(folder / "c.dcm", PatientID="P3", PatientName="N" * 15_001)
        make_dicom(folder / "d.dcm", StudyInstanceUID="1.2." + "3" * 70)
    db = pg_workspace.db
    report = run_import(db, pg_workspace.settings.data_dir, [folder])
    reasons = {Path(r.path).name: (str(r.outcome), r.reason) for r in report.files}
    assert reasons["c.dcm"] == ("imported", "Patient Name cut to 256 of its 15,001 characters")
    assert reasons["d.dcm"][0] == "failed" and "invalid Study Instance UID" in reasons["d.dcm"][1]
    assert not any("database error" in reason for _, reason in reasons.values())
    with db.read() as s:
        names = {pid: name for pid, name in s.execute(select(Patient.patient_id, Patient.name))}
    assert names[prefix + "-PATIENT-ONE"] == "One^Alice"
    assert names[prefix + "-PATIENT-TWO"] == "Two^Bob"
    assert names["P3"] == "N" * 256
