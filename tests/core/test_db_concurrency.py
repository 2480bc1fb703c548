"""Two processes on one SQLite database: a writer waits for the lock as configured.

Issue #16, finding 3: while one process wrote, a second `label import` failed at once with
"database is locked" although the busy timeout is 30 s: its deferred transaction read first and
then tried to upgrade to a write, which SQLite refuses without calling the busy handler.
`Database.write()` now begins IMMEDIATE (the lock first, waiting as configured).

Real processes: a holder process takes the write lock through `Database.write()` and keeps it;
the CLI command under test starts; once it is seen sleeping in SQLite's busy handler (Linux:
/proc/<pid>/wchan), or has exited, the holder commits. The command must then succeed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select, text

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Task
from skelex_desktop.core.review.labels import current_labels
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import open_workspace
from tests.core.test_ingest_helpers import make_dicom, run_import

HOLDER = """
import sys
from sqlalchemy import text
from skelex_desktop.core.db.engine import Database

db = Database(sys.argv[1])
with db.write() as session:
    session.execute(text(
        "INSERT INTO audit_events (at, who, action, entity) "
        "VALUES (CURRENT_TIMESTAMP, 'holder', 'hold', 'test')"
    ))
    print("holding", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/wchan").exists(), reason="needs Linux /proc/<pid>/wchan"
)


def waiting_in_sqlite(pid: int, tid: int | None = None) -> bool:
    """Whether the process (or one of its threads) sleeps, as SQLite's busy handler does."""
    path = f"/proc/{pid}/task/{tid}/wchan" if tid else f"/proc/{pid}/wchan"
    try:
        return "nanosleep" in Path(path).read_text()
    except OSError:
        return False


def start_holder(url: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "holding"
    return holder


def release(holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None and holder.stdout is not None
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert holder.stdout.readline().strip() == "released"
    assert holder.wait(timeout=60) == 0


def run_against_holder(data_dir: Path, url: str, argv: list[str]) -> subprocess.CompletedProcess:
    """Run the CLI while another process holds the write lock; release it once the CLI waits
    for the lock (or has given up)."""
    holder = start_holder(url)
    try:
        command = subprocess.Popen(
            [sys.executable, "-m", "skelex_desktop", "--data-dir", str(data_dir), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 120  # a hang guard, not a measurement
        while command.poll() is None and not waiting_in_sqlite(command.pid):
            assert time.monotonic() < deadline, "the command neither waited nor finished"
            time.sleep(0.02)
    finally:
        release(holder)
    out, err = command.communicate(timeout=120)
    return subprocess.CompletedProcess(command.args, command.returncode, out, err)


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Path, str, str]:
    """A workspace with one imported DICOM image: (data dir, URL, its SOP Instance UID)."""
    data_dir = tmp_path / "data"
    ws = open_workspace(Settings(data_dir=data_dir))
    try:
        source = make_dicom(tmp_path / "in" / "a.dcm", SOPInstanceUID="1.2.826.0.1.16")
        run_import(ws.db, data_dir, [source])
    finally:
        ws.close()
    return data_dir, ws.settings.database_url, "1.2.826.0.1.16"


def test_task_add_waits_for_another_process_writing(seeded) -> None:
    data_dir, url, _ = seeded
    done = run_against_holder(
        data_dir, url, ["task", "add", "effusion", "--kind", "binary", "--classes", "no,yes"]
    )
    assert done.returncode == 0, done.stderr
    db = Database(url)
    try:
        with db.read() as s:
            assert s.scalar(select(Task.kind).where(Task.name == "effusion")) == "binary"
            holds = s.execute(text("SELECT count(*) FROM audit_events WHERE who = 'holder'"))
            assert holds.scalar() == 1  # the holder's write was committed too
    finally:
        db.dispose()


def test_label_import_waits_for_another_process_writing(seeded, tmp_path: Path) -> None:
    data_dir, url, sop = seeded
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text(f"image,task,value\n{sop},fracture,1\n", encoding="utf-8")
    done = run_against_holder(
        data_dir, url, ["--reader", "dr.second", "label", "import", str(csv_file)]
    )
    assert done.returncode == 0, done.stderr
    db = Database(url)
    try:
        with db.read() as s:
            assert [(v.task, v.value, v.reader) for v in current_labels(s)] == [
                ("fracture", 1, "dr.second")
            ]
    finally:
        db.dispose()


def test_reads_do_not_wait_for_a_writer(seeded) -> None:
    """Reads stay plain deferred transactions: a reading command runs while another process
    holds the write lock, without waiting for it."""
    data_dir, url, _ = seeded
    holder = start_holder(url)
    try:
        listed = subprocess.run(
            [sys.executable, "-m", "skelex_desktop", "--data-dir", str(data_dir), "db", "info"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        release(holder)
    assert listed.returncode == 0, listed.stderr
    assert "images: 1" in listed.stdout
