"""The window open while a CLI import runs on the same SQLite database (issue #16, finding 3).

The CLI import runs as a real process; one of its paths is a named pipe, so the import stays
in progress (a worker waits to read it) until the test writes a DICOM file into it. Meanwhile
the window opens on the same data dir, lists what the import committed, and stores a decision
while a third process holds the write lock: the window's writer waits for the lock instead of
failing with "database is locked". The running import is not taken for an interrupted one, and
it finishes with every file imported.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from sqlalchemy import select

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import AuditEvent, ImportJob
from skelex_desktop.core.review.labels import current_labels
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import open_workspace
from skelex_desktop.ui.main_window import MainWindow
from tests.core.test_db_concurrency import release, start_holder, waiting_in_sqlite
from tests.core.test_ingest_helpers import make_dicom

pytestmark = pytest.mark.skipif(
    not hasattr(os, "mkfifo") or not Path("/proc/self/wchan").exists(),
    reason="needs named pipes and Linux /proc/<pid>/wchan",
)

GUARD = 180  # seconds: a hang guard for waits on other processes, not a measurement


def wait_for(condition, what: str) -> None:  # noqa: ANN001 - a callable
    deadline = time.monotonic() + GUARD
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def job_of(db: Database) -> ImportJob | None:
    with db.read() as s:
        return s.scalars(select(ImportJob)).first()


def writer_thread_id() -> int | None:
    for thread in threading.enumerate():
        if thread.name.startswith("skelex-writer"):
            return thread.native_id
    return None


def test_window_decides_while_a_cli_import_runs(
    qtbot, demo_source: Path, tmp_path: Path, no_modal
) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(demo_source, tmp_path / "demo")
    patients = sorted(p for p in (tmp_path / "demo").iterdir() if p.is_dir() and p.name != "masks")
    files = [f for p in patients for f in p.rglob("*") if f.is_file()]
    late = tmp_path / "P-LATE" / "late.dcm"
    late.parent.mkdir()
    os.mkfifo(late)
    report_file = tmp_path / "report.json"
    cli = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "skelex_desktop",
            "--data-dir",
            str(data_dir),
            "--reader",
            "dr.cli",
            "import",
            *map(str, patients),
            str(late),
            "--report",
            str(report_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # the job's lock file appears once the CLI has migrated the database and starts its job
        wait_for(lambda: any((data_dir / "locks").glob("import-*.lock")), "the CLI's import job")
        watcher = Database(f"sqlite:///{data_dir / 'skelex.sqlite3'}")
        wait_for(
            lambda: (job := job_of(watcher)) is not None and job.imported == len(files),
            "the CLI import to commit every file but the pipe",
        )

        # the window opens during the import, as `skelex-desktop` does
        workspace = open_workspace(Settings(data_dir=data_dir, reader="dr.window"))
        win = MainWindow(workspace)
        qtbot.addWidget(win)
        win.show()
        job = job_of(watcher)
        assert job is not None and job.state == "running"  # not taken for an interrupted one
        qtbot.waitUntil(lambda: win.worklist.model.rowCount() == len(files), timeout=30_000)
        win.worklist.table.setFocus()
        win.worklist.table.selectRow(0)
        qtbot.keyClick(win.worklist.table, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: win.analysis is not None, timeout=GUARD * 1000)
        image_id = win.current.image_id

        # a decision while another process holds the write lock waits for it
        holder = start_holder(workspace.settings.database_url)
        try:
            qtbot.keyClick(win.viewer, Qt.Key.Key_T)
            assert win.findings.current_state().name == "fracture"
            qtbot.keyClick(win.viewer, Qt.Key.Key_1)
            qtbot.waitUntil(  # the writer sleeps in SQLite's busy handler, or is done
                lambda: win.session.idle or waiting_in_sqlite(os.getpid(), writer_thread_id()),
                timeout=GUARD * 1000,
            )
        finally:
            release(holder)
        qtbot.waitUntil(lambda: win.session.idle, timeout=GUARD * 1000)
        assert win.last_error == "" and no_modal == []
        with workspace.db.read() as s:
            labels = {(v.image_id, v.task): v for v in current_labels(s)}
        assert labels[(image_id, "fracture")].value == 1
        assert labels[(image_id, "fracture")].reader == "dr.window"

        # the last file arrives; the import finishes while the window stays open
        with open(late, "wb") as pipe:
            pipe.write(make_dicom(tmp_path / "late-source.dcm").read_bytes())
        out, err = cli.communicate(timeout=GUARD)
        assert cli.returncode == 0, err
        win.close()
        workspace.close()
        report = json.loads(report_file.read_text())
        assert (report["state"], report["imported"], report["failed"]) == (
            "completed",
            len(files) + 1,
            0,
        )
        with watcher.read() as s:
            job = s.scalars(select(ImportJob)).one()
            assert (job.state, job.imported) == ("completed", len(files) + 1)
            interrupted = s.scalars(
                select(AuditEvent).where(AuditEvent.action == "import.interrupted")
            ).all()
            assert interrupted == []
        watcher.dispose()
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
