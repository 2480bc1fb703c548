"""No orphans: the processes an import or a training starts end when their parent is killed.

Issue #16, finding 4: after kill -9 of an `import`, the forkserver, the decoding workers and
multiprocessing's resource tracker stayed alive, holding the dead parent's pipes open. Here the
parent is killed with SIGKILL while its children are busy: each child waits to read a named
pipe that nobody writes (a worker decoding a file, the training child loading its dataset),
so only the watch on the parent can end it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import AuditEvent, ImportJob
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import open_workspace
from tests.core.test_ingest_helpers import make_dicom

pytestmark = pytest.mark.skipif(
    not hasattr(os, "mkfifo") or not Path("/proc/self/stat").exists(),
    reason="needs named pipes and Linux /proc",
)

GUARD = 120  # seconds: a hang guard, not a measurement


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()  # state, ppid, ...


def descendants(pid: int) -> list[int]:
    """Every living process below `pid` (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def alive(pid: int) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")  # a zombie has exited


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_for(condition, what: str) -> None:  # noqa: ANN001 - a callable
    deadline = time.monotonic() + GUARD
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def kill_and_check_family(parent: subprocess.Popen, family: list[int]) -> None:
    """SIGKILL `parent`; every process of `family` must then exit by itself. Any that is left
    after the guard is killed (they are this test's) and the test fails."""
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait(timeout=GUARD)
    deadline = time.monotonic() + GUARD
    try:
        while any(alive(pid) for pid in family) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = {pid: command_line(pid) for pid in family if alive(pid)}
        assert left == {}, f"still running after their parent was killed: {left}"
    finally:
        for pid in family:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_import_workers_exit_when_the_import_is_killed(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    for i in range(4):
        make_dicom(folder / f"{i}.dcm")
    stuck = tmp_path / "stuck.dcm"
    os.mkfifo(stuck)  # a worker blocks reading it: the import stays in its decoding phase
    data_dir = tmp_path / "data"
    cli = subprocess.Popen(
        [sys.executable, "-m", "skelex_desktop", "--data-dir", str(data_dir), "import"]
        + [str(folder), str(stuck)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: any((data_dir / "locks").glob("import-*.lock")), "the import job")
        db = Database(f"sqlite:///{data_dir / 'skelex.sqlite3'}")

        def four_committed() -> bool:
            with db.read() as s:
                job = s.scalars(select(ImportJob)).first()
            return job is not None and job.imported == 4

        wait_for(four_committed, "the four readable files to be committed")
        db.dispose()
        family = descendants(cli.pid)
        names = [command_line(pid) for pid in family]
        assert any("forkserver" in name for name in names), names  # workers (and their server)
        kill_and_check_family(cli, family)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()

    # the next start sees the job's lock released by the dead process: interrupted
    ws = open_workspace(Settings(data_dir=data_dir))
    try:
        with ws.db.read() as s:
            job = s.scalars(select(ImportJob)).one()
            assert (job.state, job.imported) == ("failed", 4)
            assert s.scalar(select(AuditEvent.id).where(AuditEvent.action == "import.interrupted"))
    finally:
        ws.close()
    assert not list((data_dir / "locks").glob("*.lock"))


PARENT = """
import sys
from pathlib import Path
from skelex_desktop.core.heads.training_job import run_worker

run_worker(Path(sys.argv[1]), Path(sys.argv[2]), 2, 0, 1)
"""


def test_the_training_child_exits_when_its_parent_is_killed(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset.npz"
    os.mkfifo(dataset)  # the child blocks loading it, as it would in a long fold
    out = tmp_path / "head.npz"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(dataset), str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def child_started() -> bool:
            return any("train_worker" in command_line(p) for p in descendants(parent.pid))

        wait_for(child_started, "the training child")
        family = descendants(parent.pid)
        kill_and_check_family(parent, family)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    assert not out.exists()
