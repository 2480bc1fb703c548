"""Export folders and their leftovers (issue #15, finding 7), through the real CLI process:
SIGTERM leaves no half-written folder, a killed export's leftover is removed by the next export,
the finished folder follows the umask, read-only targets and parents are refused by name, and
"nothing to export" names the filters."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.core.export_fixtures import ExportWorld, leftovers, open_world
from tests.core.test_database_file_messages import AS_PLAIN_USER, needs_plain_user

FORMATS = "csv,coco,hf,dicom-sr,dicom-seg"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExportWorld]:
    w = open_world(tmp_path_factory.mktemp("leftovers"), n=16)
    w.workspace.close()
    yield w


def export(world: ExportWorld, out: Path, *extra: str, prefix: list[str] | None = None):  # noqa: ANN201
    command = [*(prefix or []), sys.executable, "-m", "skelex_desktop"]
    command += ["--data-dir", str(world.workspace.settings.data_dir), "export"]
    command += ["--format", FORMATS, "--deidentify", "--out", str(out), *extra]
    return command


def test_sigterm_removes_the_partial_folder(world: ExportWorld, tmp_path: Path) -> None:
    out = tmp_path / "terminated"
    child = subprocess.Popen(export(world, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not leftovers(tmp_path) and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert leftovers(tmp_path), "the export finished before it could be terminated"
    child.send_signal(signal.SIGTERM)
    _out, err = child.communicate(timeout=120)
    assert child.returncode == 1
    assert b"export cancelled; nothing was written" in err
    assert leftovers(tmp_path) == [] and not out.exists()


def test_a_killed_exports_leftover_is_removed_and_the_mode_follows_the_umask(
    world: ExportWorld, tmp_path: Path
) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    out = tmp_path / "set"
    stale = tmp_path / f".skelex-export-set-{dead.pid}-abc123"
    (stale / "images").mkdir(parents=True)
    (stale / "images" / "half.png").write_bytes(b"\x89PNG")
    old_umask = os.umask(0o022)
    try:
        done = subprocess.run(export(world, out), capture_output=True, timeout=300)
    finally:
        os.umask(old_umask)
    assert done.returncode == 0, done.stderr
    assert leftovers(tmp_path) == [] and (out / "manifest.json").is_file()
    assert stat.S_IMODE(out.stat().st_mode) == 0o755  # not the 0700 of a temporary folder


@needs_plain_user
def test_read_only_target_and_parent_are_refused_by_name(world: ExportWorld, tmp_path: Path):
    target = tmp_path / "empty"
    target.mkdir()
    target.chmod(0o555)
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        refused = subprocess.run(
            export(world, target, prefix=AS_PLAIN_USER), capture_output=True, text=True, timeout=300
        )
        assert refused.returncode == 1
        assert f"{target} exists and is read-only" in refused.stderr
        below = subprocess.run(
            export(world, parent / "set", prefix=AS_PLAIN_USER),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert below.returncode == 1
        assert f"cannot write into {parent}: the folder is read-only" in below.stderr
        assert "Errno" not in below.stderr
    finally:
        target.chmod(0o755)
        parent.chmod(0o755)


def test_nothing_to_export_names_the_filters(world: ExportWorld, tmp_path: Path) -> None:
    done = subprocess.run(
        export(world, tmp_path / "none", "--reader", "nobody", "--status", "any"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert "status any" in done.stderr and "reader nobody" in done.stderr
