"""Messages about the database file name it and say the way out (issue #16, finding 5).

Before: "file is not a database" without the path; a read-only database failed even
`worklist`, `label list` and `db info` ("attempt to write a readonly database"); a database
from a newer version said "Can't locate revision identified by '0099'".
All through the real CLI (`python -m skelex_desktop`) on real SQLite files.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.test_ingest_helpers import make_dicom

# root writes whatever the permission bits say; without these capabilities it obeys them
AS_PLAIN_USER = (
    ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"] if os.geteuid() == 0 else []
)
needs_plain_user = pytest.mark.skipif(
    os.geteuid() == 0 and shutil.which("setpriv") is None,
    reason="running as root without setpriv: a read-only file would still be writable",
)


def cli(data_dir: Path, *argv: str, prefix: list[str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "skelex_desktop", "--data-dir", str(data_dir)]
        + list(argv),
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.fixture
def workspace_with_a_label(tmp_path: Path) -> Path:
    """A data dir with one imported DICOM image and one label, made through the CLI."""
    data_dir = tmp_path / "data"
    make_dicom(tmp_path / "in" / "a.dcm", SOPInstanceUID="1.2.826.0.1.55")
    assert cli(data_dir, "import", str(tmp_path / "in")).returncode == 0
    labels = tmp_path / "labels.csv"
    labels.write_text("image,task,value\n1.2.826.0.1.55,fracture,1\n", encoding="utf-8")
    done = cli(data_dir, "--reader", "dr.one", "label", "import", str(labels))
    assert done.returncode == 0, done.stderr
    return data_dir


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    db_file = data_dir / "skelex.sqlite3"
    db_file.write_bytes(b"these are not the bytes of a database\n" * 200)
    for argv in (["worklist"], ["db", "info"], ["import", str(tmp_path)]):
        line = one_error_line(cli(data_dir, *argv))
        assert line == (
            f"skelex-desktop: {db_file} is not a SQLite database (another kind of file, "
            f"encrypted or overwritten): restore a copy from {data_dir / 'backups'} (made before "
            "every schema upgrade), or point SKELEX Desktop at another database "
            "(--data-dir DIR or --db URL)"
        ), argv
    assert db_file.read_bytes() == b"these are not the bytes of a database\n" * 200


@needs_plain_user
@pytest.mark.parametrize("read_only", ["file", "file and folder"])
def test_a_read_only_database_opens_read_only_for_reading_commands(
    workspace_with_a_label: Path, read_only: str
) -> None:
    data_dir = workspace_with_a_label
    db_file = data_dir / "skelex.sqlite3"
    assert not db_file.with_name("skelex.sqlite3-wal").exists()  # closed cleanly
    before = db_file.read_bytes()
    db_file.chmod(0o444)
    if read_only == "file and folder":
        data_dir.chmod(0o555)
    try:
        listed = cli(data_dir, "worklist", "--json", prefix=AS_PLAIN_USER)
        assert listed.returncode == 0, listed.stderr
        assert [row["status"] for row in json.loads(listed.stdout)["rows"]] == ["in_review"]
        labels = cli(data_dir, "label", "list", "--json", prefix=AS_PLAIN_USER)
        assert labels.returncode == 0, labels.stderr
        assert [(v["task"], v["value"], v["reader"]) for v in json.loads(labels.stdout)] == [
            ("fracture", 1, "dr.one")
        ]
        info = cli(data_dir, "db", "info", prefix=AS_PLAIN_USER)
        assert info.returncode == 0, info.stderr
        assert f"database: sqlite:///{db_file} (read-only)" in info.stdout
        assert "images: 1" in info.stdout and "labels: 1" in info.stdout
        tasks = cli(data_dir, "task", "list", prefix=AS_PLAIN_USER)
        assert tasks.returncode == 0 and "fracture" in tasks.stdout
        report = cli(data_dir, "audit", "report", "--json", prefix=AS_PLAIN_USER)
        assert report.returncode == 0, report.stderr
        assert [r["task"] for r in json.loads(report.stdout)["rows"]] == ["fracture"]

        # a command that writes is refused up front, naming the file and the way out
        line = one_error_line(
            cli(data_dir, "task", "add", "x", "--kind", "binary", prefix=AS_PLAIN_USER)
        )
        assert line == (
            f"skelex-desktop: cannot write to {db_file}: the file or its folder is read-only "
            "for this user; make them writable (e.g. chmod u+w), or use the database only for "
            "reading (worklist, label list, db info)"
        )
    finally:
        data_dir.chmod(0o755)
        db_file.chmod(0o644)
    assert db_file.read_bytes() == before  # nothing was written


def test_a_database_from_a_newer_version_is_named_and_left_alone(
    workspace_with_a_label: Path,
) -> None:
    data_dir = workspace_with_a_label
    db_file = data_dir / "skelex.sqlite3"
    con = sqlite3.connect(db_file)
    con.execute("UPDATE alembic_version SET version_num = '0099'")
    con.commit()
    con.close()
    expected = (
        f"skelex-desktop: {db_file} has schema revision '0099', which this version of SKELEX "
        "Desktop does not know (it knows up to "
    )
    for argv in (["worklist"], ["db", "upgrade"], ["label", "list"]):
        line = one_error_line(cli(data_dir, *argv))
        assert line.startswith(expected), (argv, line)
        assert "written by a newer version; open it with that version" in line
        assert str(data_dir / "backups") in line
    con = sqlite3.connect(db_file)
    assert con.execute("SELECT version_num FROM alembic_version").fetchall() == [("0099",)]
    con.close()
    assert not (data_dir / "backups").exists() or not list((data_dir / "backups").iterdir())
