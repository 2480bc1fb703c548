"""Kill -9 at random moments: label import, single decisions, import, export.

Each scenario runs one uncut control (its duration bounds the random kill delays), then
`TRIALS` copies of the same work, each killed with SIGKILL after a seeded random delay. After
each kill: the database passes `PRAGMA integrity_check` and `foreign_key_check`; a label import
is all or nothing; every decision reported committed is there (none lost) with its audit row;
an import can be run again to completion; an export folder is absent or complete; and no
process of the killed one's session (forkserver, decoding workers) is alive `ORPHAN_WAIT_S`
later. Figures: conftest.py, docs/RELIABILITY.md.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert

from skelex_desktop.core.db.models import Image, Patient, Series, Study
from skelex_desktop.core.export.manifest import MANIFEST, verify
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import open_workspace
from tests.core.export_fixtures import leftovers, open_world
from tests.core.test_ingest_helpers import bone_phantom, make_dicom
from tests.reliability.conftest import TRIALS
from tests.reliability.harness import app, integrity_problems, query, run_and_kill, timed_run

DB = "skelex.sqlite3"
LABEL_ROWS = 40_000
LABEL_IMAGES = 4_000
IMPORT_FILES = 300
EXPORT_IMAGES = 24


def add_images(data_dir: Path, count: int) -> None:
    """A workspace with `count` images (rows only), created by the application's own code."""
    workspace = open_workspace(Settings(data_dir=data_dir, reader="dr.setup"))
    with workspace.db.write() as session:
        session.execute(insert(Patient), [{"id": 1, "patient_id": "P1", "name": "A^B"}])
        session.execute(insert(Study), [{"id": 1, "patient_id": 1, "study_instance_uid": "1.2"}])
        session.execute(insert(Series), [{"id": 1, "study_id": 1, "series_instance_uid": "1.2.1"}])
        session.execute(
            insert(Image),
            [
                {
                    "series_id": 1,
                    "sop_instance_uid": f"1.3.{i}",
                    "file_path": f"/data/{i}.dcm",
                    "content_hash": f"{i:064x}",
                    "rows": 64,
                    "cols": 64,
                }
                for i in range(count)
            ],
        )
    workspace.close()


@pytest.fixture(scope="module")
def startup_s(tmp_path_factory: pytest.TempPathFactory) -> float:
    """Seconds `skelex-desktop db info` takes: the start every command pays before its work."""
    folder = tmp_path_factory.mktemp("startup")
    timed_run(app(folder / "data", "db", "info"), folder / "first")  # creates the database
    return timed_run(app(folder / "data", "db", "info"), folder / "again")[0]


def kill_delay(rng: random.Random, startup: float, duration: float) -> float:
    """A moment between half the start-up time and the end of an uncut run."""
    return rng.uniform(startup / 2, max(duration, startup))


def fresh_copy(template: Path, target: Path) -> Path:
    shutil.copytree(template, target)
    return target


def count(db_file: Path, sql: str) -> int:
    return int(query(db_file, sql)[0][0])


def record(figures: list[dict[str, Any]], scenario: str, delay: float, **row: Any) -> None:
    figures.append({"scenario": scenario, "delay_s": round(delay, 3), **row})


@pytest.fixture(scope="module")
def label_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("label-import")
    add_images(root / "template", LABEL_IMAGES)
    csv_file = root / "labels.csv"
    tasks = [("fracture", "1"), ("kl_grade", "3"), ("tumour_category", "benign")]
    with csv_file.open("w", encoding="utf-8") as handle:
        handle.write("image,task,value\n")
        for n in range(LABEL_ROWS):
            task, value = tasks[n % 3]
            handle.write(f"1.3.{n % LABEL_IMAGES},{task},{value}\n")
    return root / "template", csv_file


def test_a_killed_label_import_is_all_or_nothing(
    label_world: tuple[Path, Path], tmp_path: Path, rng, figures, startup_s: float
) -> None:
    template, csv_file = label_world
    control = fresh_copy(template, tmp_path / "control")
    duration, _ = timed_run(app(control, "label", "import", str(csv_file)), tmp_path / "c-out")
    assert count(control / DB, "SELECT count(*) FROM labels") == LABEL_ROWS
    for trial in range(TRIALS):
        data = fresh_copy(template, tmp_path / f"t{trial}")
        delay = kill_delay(rng, startup_s, duration)
        outcome = run_and_kill(
            app(data, "label", "import", str(csv_file)), delay, tmp_path / f"o{trial}"
        )
        assert integrity_problems(data / DB) == []
        labels = count(data / DB, "SELECT count(*) FROM labels")
        audits = count(data / DB, "SELECT count(*) FROM audit_events WHERE action = 'label.set'")
        in_review = count(data / DB, "SELECT count(*) FROM images WHERE status = 'in_review'")
        assert (labels, audits, in_review) in {(0, 0, 0), (LABEL_ROWS, LABEL_ROWS, LABEL_IMAGES)}
        assert labels == LABEL_ROWS or not outcome.finished
        assert outcome.orphans == []
        record(
            figures,
            "label import",
            delay,
            control_s=round(duration, 2),
            outcome="complete" if labels else "absent",
            survived=True,
            lost=0,
        )


@pytest.fixture(scope="module")
def decision_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    template = tmp_path_factory.mktemp("decisions") / "template"
    add_images(template, 12)
    return template


def decider(data_dir: Path, decisions: int) -> list[str]:
    return [sys.executable, "-m", "tests.reliability.decider", str(data_dir), str(decisions)]


def test_a_killed_reader_loses_no_committed_decision(
    decision_world: Path, tmp_path: Path, rng, figures, startup_s: float
) -> None:
    control = fresh_copy(decision_world, tmp_path / "control")
    duration, done = timed_run(decider(control, 150), tmp_path / "c-out")
    assert len(done.stdout.splitlines()) == 150
    for trial in range(TRIALS):
        data = fresh_copy(decision_world, tmp_path / f"t{trial}")
        delay = kill_delay(rng, startup_s, duration)
        outcome = run_and_kill(decider(data, 100_000), delay, tmp_path / f"o{trial}")
        assert not outcome.finished, outcome.stderr
        db = data / DB
        assert integrity_problems(db) == []
        reported = [line.split() for line in outcome.stdout.splitlines() if line.strip()]
        labels = {row[0]: row[1:] for row in query(db, "SELECT id, retracted_at FROM labels")}
        lost = [op for op in reported if int(op[1]) not in labels]
        lost += [op for op in reported if op[0] == "undo" and labels[int(op[1])][0] is None]
        assert lost == []
        # every stored decision and undo has its audit row; at most one current per pair
        assert count(db, "SELECT count(*) FROM labels") == count(
            db, "SELECT count(*) FROM audit_events WHERE action = 'label.set'"
        )
        assert count(db, "SELECT count(*) FROM labels WHERE retracted_at IS NOT NULL") == count(
            db, "SELECT count(*) FROM audit_events WHERE action = 'label.undo'"
        )
        assert (
            query(
                db,
                "SELECT image_id, task_id, count(*) FROM labels WHERE superseded_by IS NULL "
                "AND retracted_at IS NULL GROUP BY image_id, task_id HAVING count(*) > 1",
            )
            == []
        )
        # a decision is committed before it is reported: at most one more is stored
        assert len(labels) - sum(op[0] == "set" for op in reported) in (0, 1)
        assert outcome.orphans == []
        record(
            figures,
            "single decisions",
            delay,
            control_s=round(duration, 2),
            outcome="killed",
            survived=True,
            lost=len(lost),
            reported=len(reported),
        )


@pytest.fixture(scope="module")
def import_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("import-files")
    for i in range(IMPORT_FILES):
        make_dicom(folder / f"f{i:03d}.dcm", bone_phantom(512, 512), PatientID=f"P{i % 9}")
    return folder


def test_a_killed_import_leaves_no_orphan_and_can_be_run_again(
    import_files: Path, tmp_path: Path, rng, figures, startup_s: float
) -> None:
    duration, _ = timed_run(app(tmp_path / "control", "import", str(import_files)), tmp_path / "c")
    for trial in range(TRIALS):
        data = tmp_path / f"t{trial}"
        delay = kill_delay(rng, startup_s, duration)
        outcome = run_and_kill(
            app(data, "import", str(import_files)), delay, tmp_path / f"o{trial}"
        )
        at_kill = 0
        if (data / DB).exists():  # killed after the database was created (maybe mid-migration)
            assert integrity_problems(data / DB) == []
            if query(data / DB, "SELECT name FROM sqlite_master WHERE name = 'images'"):
                at_kill = count(data / DB, "SELECT count(*) FROM images")
        orphans = outcome.orphans
        _, again = timed_run(app(data, "import", str(import_files)), tmp_path / f"r{trial}")
        assert integrity_problems(data / DB) == []
        assert count(data / DB, "SELECT count(*) FROM images") == IMPORT_FILES
        assert count(data / DB, "SELECT count(DISTINCT sop_instance_uid) FROM images") == (
            IMPORT_FILES
        )
        assert count(data / DB, "SELECT count(*) FROM import_jobs WHERE state = 'running'") == 0
        record(
            figures,
            "import",
            delay,
            control_s=round(duration, 2),
            outcome="finished"
            if outcome.finished
            else f"killed ({stored(at_kill)} images stored, "
            f"{'with' if outcome.children else 'no'} workers)",
            images_at_kill=at_kill,
            children_at_kill=outcome.children,
            survived=not orphans,
            lost=0,
            orphans=orphans,
        )
        assert orphans == [], "import workers outlived the killed import"


def stored(images: int) -> str:
    return "no" if images == 0 else "all" if images == IMPORT_FILES else "some"


@pytest.fixture(scope="module")
def export_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    world = open_world(root, n=EXPORT_IMAGES)
    world.workspace.close()
    return root


EXPORT = ("export", "--format", "csv,coco,hf,dicom-sr", "--deidentify", "--status", "any")


def test_a_killed_export_leaves_its_target_absent_or_complete(
    export_world: Path, tmp_path: Path, rng, figures, startup_s: float
) -> None:
    control = fresh_copy(export_world, tmp_path / "control")
    duration, _ = timed_run(
        app(control / "data", *EXPORT, "--out", str(tmp_path / "c-export")), tmp_path / "c"
    )
    assert verify(tmp_path / "c-export") == []
    for trial in range(TRIALS):
        world = fresh_copy(export_world, tmp_path / f"t{trial}")
        out = world / "export"
        delay = kill_delay(rng, startup_s, duration)
        outcome = run_and_kill(app(world / "data", *EXPORT, "--out", str(out)), delay, world / "o")
        assert integrity_problems(world / "data" / DB) == []
        complete = out.exists()
        if complete:
            assert (out / MANIFEST).exists() and verify(out) == []
        staging = leftovers(world)
        if not complete:  # the export can be made again to the same folder
            timed_run(app(world / "data", *EXPORT, "--out", str(out)), world / "again")
            assert verify(out) == []
            assert json.loads((out / MANIFEST).read_text())["files"]
        assert outcome.orphans == []
        record(
            figures,
            "export",
            delay,
            control_s=round(duration, 2),
            outcome="complete" if complete else "absent",
            survived=True,
            lost=0,
            staging_left=len(staging),
        )
