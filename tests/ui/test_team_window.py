"""Issue #19's "done when", in the real window: two readers and an adjudicator on one PostgreSQL
database run a blinded project to final labels, with agreement reported.

The admin imports the demo studies and creates a blinded project; alice reads in her window
(connected as her own LOGIN role; the settings' reader name does not count), by keyboard only,
with the background analysis running as her; bob's decisions stay invisible to her; bob reads in
his window; the adjudicator sets the final labels on the command line and `team agreement`
reports.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from sqlalchemy import select, text

from skelex_desktop.core.db.models import Assignment, Image, Label
from skelex_desktop.core.ingest import ImportOptions, import_paths
from skelex_desktop.core.review.labels import confirm_label
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import open_workspace
from tests.core.postgres_server import find_pg_bin
from tests.core.team_db import Team, cluster_url_fixture  # noqa: F401 - the fixture
from tests.ui.conftest import active_window

pytestmark = pytest.mark.skipif(find_pg_bin() is None, reason="PostgreSQL server not installed")

TIMEOUT = 120_000
PROJECT_IMAGES = [1, 2, 3]


@pytest.fixture
def team(cluster_url: str, tmp_path: Path, demo_source: Path) -> Team:
    """ann (admin) imports the demo studies and deals a blinded project to alice and bob."""
    t = Team(cluster_url, tmp_path)
    assert t.cli("skelex", "team", "init") == 0
    assert t.cli("skelex", "team", "add-user", "ann", "--role", "admin") == 0
    for name, role in (("alice", "reader"), ("bob", "reader"), ("carol", "adjudicator")):
        assert t.cli("ann", "team", "add-user", name, "--role", role) == 0
    ws = open_workspace(Settings(data_dir=tmp_path / "ann", db_url=t.url("ann")))
    patients = sorted(p for p in demo_source.iterdir() if p.is_dir() and p.name != "masks")
    import_paths(ws.db, patients, ImportOptions(data_dir=ws.settings.data_dir, workers=1))
    ws.close()
    create = ["team", "project", "create", "knees", "--blinded", "--reads", "2"]
    create += ["--images", "ids=" + ",".join(map(str, PROJECT_IMAGES))]
    create += ["--task", "abnormal", "--task", "fracture", "--reader", "alice", "--reader", "bob"]
    assert t.cli("ann", *create) == 0
    return t


def _reader_window(qtbot, team: Team, user: str):  # noqa: ANN001, ANN202 - qtbot, MainWindow
    settings = Settings(data_dir=team.tmp_path / user, db_url=team.url(user), reader="dr.other")
    ws = open_workspace(settings)
    assert ws.settings.reader == user  # the session user, not the setting
    win = active_window(qtbot, ws)
    return ws, win


DIGITS = {0: Qt.Key.Key_0, 1: Qt.Key.Key_1}


def _read_by_keyboard(qtbot, win, abnormal: int, fracture: int) -> int:  # noqa: ANN001
    """From the worklist: open the first image still to read (Enter), decide both tasks with
    digits, Enter; its image id."""
    win.start()
    table = win.worklist.table
    qtbot.waitUntil(lambda: QApplication.focusWidget() is table)
    image_id = win.current.image_id
    qtbot.keyClick(table, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is win.viewer)
    qtbot.waitUntil(lambda: win.analysis is not None, timeout=TIMEOUT)
    for _ in win.session.tasks:  # T walks the tasks (the cursor stays where it was left)
        if win.session.current_task.name == "abnormal":
            break
        qtbot.keyClick(win.viewer, Qt.Key.Key_T)
    assert win.session.current_task.name == "abnormal"
    qtbot.keyClick(win.viewer, DIGITS[abnormal])
    qtbot.keyClick(win.viewer, Qt.Key.Key_T)
    assert win.session.current_task.name == "fracture"
    qtbot.keyClick(win.viewer, DIGITS[fracture])
    qtbot.keyClick(win.viewer, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: win.session.idle)
    assert win.last_error == "", win.last_error
    return image_id


def test_two_readers_and_an_adjudicator_run_a_blinded_project(
    qtbot, team: Team, no_modal: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # bob reads image 1 first (his own connection): alice must not see it
    bob_db = team.db("bob")
    confirm_label(bob_db, 1, "abnormal", 1, "bob")
    bob_db.dispose()

    # before an admin analysed: alice's window says why there is no AI, and she can read on
    ws, win = _reader_window(qtbot, team, "alice")
    win.start()
    qtbot.waitUntil(lambda: "only an admin" in win.findings.analysis_status.text(), timeout=TIMEOUT)
    assert "skelex-desktop analyze" in win.findings.analysis_status.text()
    win.close()
    ws.close()
    assert team.cli("ann", "analyze", *map(str, PROJECT_IMAGES)) == 0

    ws, win = _reader_window(qtbot, team, "alice")
    rows = [win.worklist.model.row_at(r) for r in range(win.worklist.model.rowCount())]
    assert sorted(r.image_id for r in rows) == PROJECT_IMAGES  # her assignments only (of 6)
    assert all(r.reader == "" and r.status in ("new", "analysed") for r in rows)
    first = _read_by_keyboard(qtbot, win, abnormal=0, fracture=0)
    assert no_modal == []
    assert "No error map" not in win.findings.analysis_status.text()
    # her worklist shows her own read as done; the next unreviewed image is open
    row = next(r for r in range(len(rows)) if win.worklist.model.row_at(r).image_id == first)
    assert (win.worklist.model.row_at(row).status, win.worklist.model.row_at(row).reader) == (
        "confirmed",
        "alice",
    )
    assert win.current.image_id != first
    with ws.db.read() as s:
        assert {(lab.reader, lab.value) for lab in s.scalars(select(Label))} == {
            ("alice", 0)
        }  # bob's decision on image 1 is invisible to her
        assert s.scalar(select(Image.status).where(Image.id == first)) != "confirmed"
    # bob's decision is not on her review panel either
    win.open_image(1)
    qtbot.waitUntil(lambda: win.session.idle)
    assert win.session.task_state("abnormal").reader in ("", "alice")
    if first != 1:
        assert not win.session.task_state("abnormal").decided
    for _ in range(len(PROJECT_IMAGES) - 1):  # the rest of her reads
        _read_by_keyboard(qtbot, win, abnormal=1, fracture=0)
    win.close()
    ws.close()

    ws, win = _reader_window(qtbot, team, "bob")
    for _ in PROJECT_IMAGES:
        _read_by_keyboard(qtbot, win, abnormal=1, fracture=1)
    win.close()
    ws.close()
    with team.db("ann").read() as s:
        states = set(s.execute(select(Assignment.reader, Assignment.status)).all())
        assert states == {("alice", "done"), ("bob", "done")}
        assert set(s.scalars(select(Image.status).where(Image.id.in_(PROJECT_IMAGES)))) != {
            "confirmed"
        }
        assert s.execute(text("SELECT count(*) FROM final_labels")).scalar() == 0

    # the adjudicator: the queue, final labels, the images confirmed, agreement reported
    capsys.readouterr()
    assert team.cli("carol", "team", "queue", "--json") == 0
    queue = json.loads(capsys.readouterr().out)
    assert {(q["image_id"], q["task"]) for q in queue} == {
        (i, t) for i in PROJECT_IMAGES for t in ("abnormal", "fracture")
    }
    for item in queue:
        value = item["reads"][0]["value"] if item["state"] == "agree" else 1
        adjudicate = ["team", "adjudicate", str(item["image_id"]), "--task", item["task"]]
        assert team.cli("carol", *adjudicate, "--value", str(value), "--version", "0") == 0
    with team.db("ann").read() as s:
        statuses = set(s.scalars(select(Image.status).where(Image.id.in_(PROJECT_IMAGES))))
    assert statuses == {"confirmed"}
    capsys.readouterr()
    agreement_args = ["--task", "abnormal", "--task", "fracture", "--resamples", "200"]
    assert team.cli("carol", "team", "agreement", *agreement_args, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    agreement = {t["task"]: t["pairs"] for t in report["tasks"]}
    (abnormal,) = agreement["abnormal"]  # alice 0, 1, 1; bob 1, 1, 1
    assert abnormal["readers"] == ["alice", "bob"]
    assert abnormal["kappa"]["n"] == 3
    assert abnormal["kappa"]["percent_agreement"] == pytest.approx(200 / 3, abs=1e-3)
    (fracture,) = agreement["fracture"]  # alice 0, 0, 0; bob 1, 1, 1
    assert fracture["kappa"]["percent_agreement"] == 0
