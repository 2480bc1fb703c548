"""The window's analysis-queue indicator (issue #19), on a real PostgreSQL server: the admin's
window shows the jobs `analyze --queue` deferred, and their end after a `worker --once` process
took them; the counts are read off the GUI thread; an unreachable database says so; a SQLite
window has no indicator."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import Workspace, open_workspace
from skelex_desktop.ui.panels.queue_status import QueueStatus
from tests.core.postgres_server import find_pg_bin
from tests.core.team_db import Team, cluster_url_fixture  # noqa: F401 - the fixture
from tests.core.test_embeddings import import_synthetic
from tests.ui.conftest import active_window

pytestmark = pytest.mark.skipif(find_pg_bin() is None, reason="PostgreSQL server not installed")

REPO = Path(__file__).resolve().parents[2]


def test_the_status_bar_follows_the_queue(qtbot, cluster_url: str, tmp_path: Path) -> None:
    team = Team(cluster_url, tmp_path)
    assert team.cli("skelex", "team", "init") == 0
    assert team.cli("skelex", "team", "add-user", "ann", "--role", "admin") == 0
    assert team.cli("ann", "queue", "init") == 0
    data_dir = tmp_path / "data-ann"
    ws = open_workspace(Settings(data_dir=data_dir, db_url=team.url("ann")))
    import_synthetic(ws.db, data_dir, tmp_path / "shared", n=3, seed=5)
    win = active_window(qtbot, ws)
    try:
        indicator = win.queue_status
        assert indicator is not None
        qtbot.waitUntil(lambda: not indicator._pending, timeout=20_000)
        assert indicator.isHidden()  # a queue that never had a job

        assert team.cli("ann", "analyze", "--queue", "--all") == 0
        qtbot.waitUntil(
            lambda: indicator.isVisible() and "3 to do, 0 running, 0 done" in indicator.text(),
            timeout=20_000,
        )
        worker = [sys.executable, "-m", "skelex_desktop", "--db", team.url("ann")]
        worker += ["--data-dir", str(tmp_path / "machine"), "worker", "--once"]
        done = subprocess.run(worker, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert done.stdout.count(" analysed in ") == 3
        qtbot.waitUntil(
            lambda: "0 to do, 0 running, 3 done, 0 failed" in indicator.text(), timeout=20_000
        )
    finally:
        win.close()
        ws.close()


def test_counts_are_read_off_the_gui_thread_and_failures_shown(qtbot, cluster_url: str) -> None:
    readers: list[threading.Thread] = []

    def recording_read(url: str):  # noqa: ANN202 - what the default reader returns
        from skelex_desktop.core.analysis.queue import queue_counts

        readers.append(threading.current_thread())
        return queue_counts(url)

    missing = make_url(cluster_url).set(database="no_such_database")
    indicator = QueueStatus(missing.render_as_string(hide_password=False), read=recording_read)
    qtbot.addWidget(indicator)
    try:
        qtbot.waitUntil(lambda: indicator.text() == "Analysis queue: unavailable", timeout=20_000)
        assert 'database "no_such_database" does not exist' in indicator.toolTip()
        assert readers and all(t is not threading.main_thread() for t in readers)
    finally:
        indicator.stop()


def test_a_sqlite_window_has_no_queue_indicator(qtbot, workspace: Workspace) -> None:
    win = active_window(qtbot, workspace)
    try:
        assert win.queue_status is None
    finally:
        win.close()
