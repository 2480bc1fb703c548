"""Long header values: identifiers are stored whole or the file is refused with a reason; a
patient is never merged with another by a cut key; every cut is named in the import report.

Issue #16, finding 2: two Patient IDs sharing their first 64 characters imported as one
patient, and a 15,001-character Patient Name was cut to 256 without a word.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import String, select, text

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.migrate import current_revision, head_revision, upgrade
from skelex_desktop.core.db.models import Image, Patient, Series, Study
from skelex_desktop.core.ingest.limits import (
    IDENTIFIER_MAX,
    TEXT_MAX,
    UID_MAX,
)
from tests.conftest import DATA
from tests.core.test_ingest_helpers import make_dicom, outcome_of, run_import, write_raster
from tests.data.make_old_databases import PATIENT_0005

PREFIX = "X" * 64
ALICE_ID, BOB_ID = PREFIX + "-PATIENT-ONE", PREFIX + "-PATIENT-TWO"
LONG_NAME = "N" * 15_001


def dicom(path: Path, **attrs: object) -> Path:
    """A real DICOM file; pydicom warns about values longer than their VR allows (the point)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_dicom(path, **attrs)


def cli(data_dir: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "skelex_desktop", "--data-dir", str(data_dir), *argv],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_patients_sharing_their_first_64_characters_stay_two(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    dicom(folder / "alice.dcm", PatientID=ALICE_ID, PatientName="One^Alice")
    dicom(folder / "bob.dcm", PatientID=BOB_ID, PatientName="Two^Bob")
    dicom(folder / "carol.dcm", PatientID="P3", PatientName=LONG_NAME)
    data_dir, report_file = tmp_path / "data", tmp_path / "report.json"

    done = cli(data_dir, "import", str(folder), "--report", str(report_file))
    assert done.returncode == 0, done.stderr
    report = {Path(f["path"]).name: f for f in json.loads(report_file.read_text())["files"]}
    assert {name: f["outcome"] for name, f in report.items()} == dict.fromkeys(
        ("alice.dcm", "bob.dcm", "carol.dcm"), "imported"
    )
    assert (
        report["bob.dcm"]["reason"]
        == "Patient ID has 76 characters, more than DICOM's 64: stored whole"
    )
    assert report["carol.dcm"]["reason"] == "Patient Name cut to 256 of its 15,001 characters"

    listed = cli(data_dir, "worklist", "--json", "--sort", "image_id", "--ascending")
    assert listed.returncode == 0, listed.stderr
    rows = {row["image_id"]: row for row in json.loads(listed.stdout)["rows"]}
    image_of = {Path(f["path"]).name: f["image_ids"][0] for f in report.values()}
    assert (
        rows[image_of["alice.dcm"]]["patient_id"],
        rows[image_of["alice.dcm"]]["patient_name"],
    ) == (
        ALICE_ID,
        "One^Alice",
    )
    assert (rows[image_of["bob.dcm"]]["patient_id"], rows[image_of["bob.dcm"]]["patient_name"]) == (
        BOB_ID,
        "Two^Bob",
    )
    assert rows[image_of["carol.dcm"]]["patient_name"] == LONG_NAME[:256]


@pytest.mark.parametrize(
    ("keyword", "label", "rows"),
    [
        ("StudyInstanceUID", "Study Instance UID", "studies"),
        ("SeriesInstanceUID", "Series Instance UID", "series"),
        ("SOPInstanceUID", "SOP Instance UID", "images"),
    ],
)
def test_an_over_long_uid_refuses_the_file(
    db, data_dir: Path, tmp_path: Path, keyword: str, label: str, rows: str
) -> None:
    long_uid = "1.2." + "3" * 70
    bad = dicom(tmp_path / "bad.dcm", **{keyword: long_uid})
    good = dicom(tmp_path / "good.dcm", **{keyword: long_uid[:UID_MAX]})
    report = run_import(db, data_dir, [bad, good])
    assert outcome_of(report, bad) == (
        "failed",
        f"invalid {label}: 74 characters, more than the 64 a DICOM UID may have (not cut: a cut "
        f"UID could merge different {rows})",
    )
    assert outcome_of(report, good) == ("imported", "")
    with db.read() as s:
        assert len(s.scalars(select(Image)).all()) == 1


def test_an_identifier_longer_than_the_store_takes_refuses_the_file(
    db, data_dir: Path, tmp_path: Path
) -> None:
    too_long = dicom(tmp_path / "a.dcm", PatientID="Q" * (IDENTIFIER_MAX + 1))
    longest = dicom(tmp_path / "b.dcm", PatientID="Q" * IDENTIFIER_MAX)
    accession = dicom(tmp_path / "c.dcm", AccessionNumber="A" * (IDENTIFIER_MAX + 1))
    report = run_import(db, data_dir, [too_long, longest, accession])
    assert outcome_of(report, too_long) == (
        "failed",
        "Patient ID of 513 characters is longer than the 512 SKELEX Desktop stores; the file is "
        "refused rather than the Patient ID cut (a cut identifier could merge different patients "
        "or studies)",
    )
    assert outcome_of(report, accession)[0] == "failed"
    assert "Accession Number of 513 characters" in outcome_of(report, accession)[1]
    assert outcome_of(report, longest) == (
        "imported",
        "Patient ID has 512 characters, more than DICOM's 64: stored whole",
    )
    with db.read() as s:
        assert s.scalars(select(Patient.patient_id)).all() == ["Q" * IDENTIFIER_MAX]


def test_descriptive_values_are_cut_and_each_cut_is_reported(
    db, data_dir: Path, tmp_path: Path
) -> None:
    path = dicom(
        tmp_path / "a.dcm",
        StudyDescription="S" * 300,
        SeriesDescription="R" * 257,
        BodyPartExamined="B" * 70,
        AccessionNumber="ACC-" + "9" * 20,
    )
    report = run_import(db, data_dir, [path])
    assert outcome_of(report, path) == (
        "imported",
        "Accession Number has 24 characters, more than DICOM's 16: stored whole; "
        "Study Description cut to 256 of its 300 characters; "
        "Series Description cut to 256 of its 257 characters; "
        "Body Part Examined cut to 64 of its 70 characters",
    )
    with db.read() as s:
        study = s.scalars(select(Study)).one()
        assert (study.accession_number, study.description) == ("ACC-" + "9" * 20, "S" * 256)
        assert s.scalars(select(Series.description)).one() == "R" * 256
        assert s.scalars(select(Image.body_part)).one() == "B" * 64


def test_raster_patient_folders_sharing_64_characters_stay_two(
    db, data_dir: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    pixels = np.full((20, 30), 90, np.uint8)
    first = write_raster(root / (PREFIX + "-ONE") / "S1" / "a.png", pixels)
    second = write_raster(root / (PREFIX + "-TWO") / "S1" / "b.png", pixels + 1)
    report = run_import(db, data_dir, [root])
    assert outcome_of(report, first) == ("imported", "")  # not DICOM: no DICOM limit to report
    assert outcome_of(report, second) == ("imported", "")
    with db.read() as s:
        ids = s.scalars(select(Patient.patient_id).order_by(Patient.patient_id)).all()
        studies = s.scalars(select(Study.study_instance_uid)).all()
    assert ids == [PREFIX + "-ONE", PREFIX + "-TWO"]
    assert len(set(studies)) == 2


def test_the_importer_limits_are_the_columns() -> None:
    """What `fit_columns` allows is what the schema stores (and PostgreSQL enforces)."""
    columns = {
        "Patient ID": Patient.__table__.c.patient_id,
        "Accession Number": Study.__table__.c.accession_number,
        "Patient Name": Patient.__table__.c.name,
        "Patient Sex": Patient.__table__.c.sex,
        "Study Description": Study.__table__.c.description,
        "Series Description": Series.__table__.c.description,
        "Modality": Series.__table__.c.modality,
        "Body Part Examined": Image.__table__.c.body_part,
        "View Position": Image.__table__.c.view,
        "Laterality": Image.__table__.c.laterality,
    }
    limits = {"Patient ID": IDENTIFIER_MAX, "Accession Number": IDENTIFIER_MAX, **TEXT_MAX}
    for label, column in columns.items():
        assert isinstance(column.type, String)
        assert column.type.length == limits[label], label
    for column in (
        Study.__table__.c.study_instance_uid,
        Series.__table__.c.series_instance_uid,
        Image.__table__.c.sop_instance_uid,
    ):
        assert column.type.length == UID_MAX
    assert Image.__table__.c.modality.type.length == TEXT_MAX["Modality"]


def test_stored_0005_database_keeps_every_row_through_the_whole_identifier_upgrade(
    tmp_path: Path,
) -> None:
    """0006 rebuilds patients and studies (SQLite batch mode): with foreign keys enforced,
    dropping the old patients table would cascade into studies, series and images. Every row
    survives, and a patient whose ID extends the stored 64-character one is a new patient."""
    old = tmp_path / "skelex.sqlite3"
    shutil.copy(DATA / "skelex-0005.sqlite3", old)
    db = Database(f"sqlite:///{old}")
    try:
        assert current_revision(db.engine) == "0005"
        result = upgrade(db.engine)
        assert (result.before, result.after) == ("0005", head_revision())
        with db.engine.connect() as conn:
            counts = {
                table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
                for table in ("patients", "studies", "series", "images", "labels", "audit_events")
            }
            assert conn.execute(text("PRAGMA foreign_key_check")).fetchall() == []
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert counts == dict.fromkeys(counts, 1)
        with db.read() as s:
            assert s.scalars(select(Patient.patient_id)).one() == PATIENT_0005
        longer = dicom(tmp_path / "in" / "a.dcm", PatientID=PATIENT_0005 + "-2")
        report = run_import(db, tmp_path / "data", [longer])
        assert report.summary() == "imported 1, duplicates 0, skipped 0, failed 0"
        with db.read() as s:
            ids = s.scalars(select(Patient.patient_id).order_by(Patient.id)).all()
        assert ids == [PATIENT_0005, PATIENT_0005 + "-2"]
    finally:
        db.dispose()
