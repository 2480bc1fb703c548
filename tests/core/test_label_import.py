"""Issue #16, finding 6: label import in bulk, with progress, bounded, still all-or-nothing.

The bulk path must store what one decision at a time stores (labels, supersession, image
status, audit rows), show progress on a terminal, stop cleanly when cancelled, and keep only a
bounded number of reasons for a file full of bad rows. Its speed is measured in
bench/labels.py, not here.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import tempfile
import termios
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from skelex_desktop.cli import main
from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import AuditEvent, Image, Label
from skelex_desktop.core.progress import Cancelled, RecordingProgress
from skelex_desktop.core.review import label_import
from skelex_desktop.core.review.label_import import MAX_REPORTED_ERRORS, import_labels_csv
from skelex_desktop.core.review.labels import confirm_label
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import open_workspace
from tests.core.factories import add_image
from tests.core.postgres_server import find_pg_bin, postgres_cluster

IMAGES = 6


def make_workspace(folder: Path, db_url: str = "") -> None:
    """Images 1.2.3.0 ... in two studies (the last image confirmed), a study-scoped task, and
    stored labels to be superseded."""
    ws = open_workspace(Settings(data_dir=folder, db_url=db_url, reader="dr.setup"))
    with ws.db.write() as session:
        for i in range(IMAGES):
            study = i * 2 // IMAGES
            add_image(
                session, sop=f"1.2.3.{i}", study_uid=f"1.2.9.{study}", series_uid=f"1.2.9.{study}.1"
            )
        session.get(Image, IMAGES).status = "confirmed"
    confirm_label(ws.db, 1, "fracture", 1, "dr.setup")
    confirm_label(ws.db, 2, "kl_grade", "2", "dr.setup")
    ws.close()
    database = ["--db", db_url] if db_url else []
    task = ["task", "add", "hardware", "--kind", "binary", "--scope", "study"]
    assert main(["--data-dir", str(folder), *database, *task]) == 0


def rows(count: int) -> list[dict[str, str]]:
    """Rows over every image and three task kinds, repeating (image, task) pairs."""
    tasks = [
        ("fracture", ["0", "1", "fracture"]),
        ("kl_grade", ["0", "3"]),
        ("implant", ["no"]),
        ("hardware", ["1", "0", "positive"]),  # study scope: every image of the study
    ]
    out = []
    for n in range(count):
        task, values = tasks[n % len(tasks)]
        out.append(
            {
                "image": f"1.2.3.{n % IMAGES}",
                "task": task,
                "value": "" if n % 11 == 5 else values[n % len(values)],
                "uncertain": "yes" if n % 11 == 5 else "",
                "reader": "" if n % 4 else f" dr.{n % 3} ",
            }
        )
    return out


def write_csv(path: Path, table: list[dict[str, str]]) -> None:
    lines = ["image,task,value,uncertain,reader"]
    lines += [",".join(r.values()) for r in table]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def snapshot(db_path: Path) -> dict[str, Any]:
    """Everything a decision writes, with ids replaced by their order."""
    db = Database(f"sqlite:///{db_path}")
    try:
        return snapshot_of(db)
    finally:
        db.dispose()


def snapshot_of(db: Database) -> dict[str, Any]:
    with db.read() as s:
        labels = s.scalars(select(Label).order_by(Label.id)).all()
        rank = {label.id: i for i, label in enumerate(labels)}
        result = {
            "labels": [
                (
                    rank[label.id],
                    label.image_id,
                    label.task_id,
                    label.value,
                    label.uncertain,
                    label.source,
                    label.reader,
                    label.prediction_id,
                    label.prediction_relation,
                    rank.get(label.superseded_by),
                    label.retracted_at,
                )
                for label in labels
            ],
            "audit": [
                (e.who, e.action, e.entity, rank.get(e.entity_id), e.before, e.after)
                for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))
                if e.action.startswith("label.")
            ],
            "images": [
                (i.id, i.status, i.reader) for i in s.scalars(select(Image).order_by(Image.id))
            ],
        }
    return result


def test_bulk_import_stores_what_one_decision_at_a_time_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr(label_import, "CHUNK_ROWS", 7)  # pairs repeat within and across chunks
    table = rows(60)
    bulk, single = tmp_path / "bulk", tmp_path / "single"
    make_workspace(bulk)
    make_workspace(single)
    write_csv(tmp_path / "labels.csv", table)
    base = ["--data-dir", str(bulk), "--reader", "dr.csv"]
    assert main([*base, "label", "import", str(tmp_path / "labels.csv")]) == 0
    # 15 of the rows are of the study-scoped task: each is stored for the 3 images of its study
    assert "imported 90 labels" in capsys.readouterr().out

    ws = open_workspace(Settings(data_dir=single, reader="dr.csv"))
    for row in table:
        uncertain = row["uncertain"] == "yes"
        confirm_label(
            ws.db,
            int(row["image"].rsplit(".", 1)[1]) + 1,
            row["task"],
            None if uncertain else row["value"],
            row["reader"].strip() or "dr.csv",
            uncertain=uncertain,
        )
    ws.close()
    expected, got = snapshot(single / "skelex.sqlite3"), snapshot(bulk / "skelex.sqlite3")
    assert len(got["labels"]) == 92 and len(got["audit"]) == 92
    assert got == expected


def test_label_import_shows_progress_on_a_terminal(tmp_path: Path) -> None:
    make_workspace(tmp_path / "data")
    write_csv(tmp_path / "labels.csv", rows(3000))
    controller, terminal = pty.openpty()
    # a terminal 100 columns wide (a new pseudo-terminal has none, and tqdm fits the bar to it)
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    try:
        result = subprocess.run(
            [
                *(sys.executable, "-m", "skelex_desktop", "--data-dir", str(tmp_path / "data")),
                *("label", "import", str(tmp_path / "labels.csv")),
            ],
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
            timeout=120,
        )
        os.close(terminal)
        terminal = -1
        shown = b""
        while True:
            try:
                block = os.read(controller, 65536)
            except OSError:  # the terminal side is closed and everything was read
                break
            if not block:
                break
            shown += block
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    # 750 rows of the study-scoped task are stored for the 3 images of their study
    assert result.returncode == 0 and "imported 4500 labels" in result.stdout
    text = shown.decode(errors="replace")
    assert "3000/3000" in text and "line 3001" in text and "[" in text


def test_a_cancel_leaves_nothing(db: Database, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(label_import, "CHUNK_ROWS", 10)
    with db.write() as session:
        for i in range(IMAGES):
            add_image(session, sop=f"1.2.3.{i}")
    write_csv(tmp_path / "labels.csv", rows(100))
    progress = RecordingProgress(cancel_after=30)
    with pytest.raises(Cancelled):
        import_labels_csv(db, tmp_path / "labels.csv", "dr.csv", progress)
    assert progress.total == 100 and 30 <= progress.done < 100
    with db.read() as s:
        assert s.scalar(select(func.count(Label.id))) == 0
        assert (
            s.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "label.set")) == 0
        )
        assert {i.status for i in s.scalars(select(Image))} == {"new"}


def test_a_file_of_bad_rows_reports_the_first_reasons_and_counts_all(
    tmp_path: Path, capsys
) -> None:
    make_workspace(tmp_path / "data")
    bad = MAX_REPORTED_ERRORS + 250
    table = (
        rows(20)
        + [{"image": "9.9.9", "task": "fracture", "value": "1", "uncertain": "", "reader": ""}]
        * bad
    )
    write_csv(tmp_path / "labels.csv", table)
    base = ["--data-dir", str(tmp_path / "data")]
    assert main([*base, "label", "import", str(tmp_path / "labels.csv")]) == 1
    err = capsys.readouterr().err.splitlines()
    reasons = [line for line in err if ": line " in line]
    assert len(reasons) == MAX_REPORTED_ERRORS
    assert reasons[0].endswith(
        "line 22: no image with SOP Instance UID or file path '9.9.9'; "
        "import the image first (`skelex-desktop import`) or correct the "
        "reference"
    )
    assert err[-2].endswith("... and 250 more invalid rows")
    assert f"{bad} invalid rows; nothing was imported" in err[-1]
    assert main([*base, "label", "list", "--json"]) == 0
    assert [r["reader"] for r in json.loads(capsys.readouterr().out)] == ["dr.setup"] * 2


@pytest.mark.skipif(find_pg_bin() is None, reason="PostgreSQL server not installed")
def test_bulk_import_on_postgres_stores_what_one_decision_at_a_time_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other write path: ids returned by the server in order, Core executemany."""
    monkeypatch.setattr(label_import, "CHUNK_ROWS", 7)
    table = rows(40)
    write_csv(tmp_path / "labels.csv", table)
    snapshots = []
    with (
        tempfile.TemporaryDirectory(prefix="skelex-pg-") as cluster,  # readable by `postgres`
        postgres_cluster(Path(cluster) / "pg") as url,
    ):
        for how in ("bulk", "single"):
            make_workspace(tmp_path / how, db_url=url)
            ws = open_workspace(Settings(data_dir=tmp_path / how, db_url=url, reader="dr.csv"))
            if how == "bulk":
                result = import_labels_csv(ws.db, tmp_path / "labels.csv", "dr.csv")
                assert (result.imported, result.errors) == (60, [])
            else:
                for row in table:
                    uncertain = row["uncertain"] == "yes"
                    confirm_label(
                        ws.db,
                        int(row["image"].rsplit(".", 1)[1]) + 1,
                        row["task"],
                        None if uncertain else row["value"],
                        row["reader"].strip() or "dr.csv",
                        uncertain=uncertain,
                    )
            snapshots.append(snapshot_of(ws.db))
            with ws.db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
            ws.close()
    bulk, single = snapshots
    assert len(bulk["labels"]) == 62 and bulk == single
