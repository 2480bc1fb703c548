"""Team mode on a real PostgreSQL server (issue #19): each person connects as their own role.

`team init` prepares the database (roles, grants, row-level security); two readers and an
adjudicator are LOGIN roles made with `team add-user`. The rules are the database's own: a
reader cannot write another's decision nor a final label, and sees no one else's decisions
while a blinded project holds the image; the reader name is the session user whatever the
settings say; final labels are versioned and a stale write is refused, also between two
processes racing for the same version.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import DBAPIError

from skelex_desktop.cli import main
from skelex_desktop.core.db.models import Label
from skelex_desktop.core.review.decisions import (
    confirm_image,
    image_details,
    reopen_image,
    task_states,
)
from skelex_desktop.core.review.labels import confirm_label, current_labels, undo_label
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.workspace import open_workspace
from tests.core.factories import add_image
from tests.core.postgres_server import find_pg_bin
from tests.core.team_db import Team, cluster_url_fixture  # noqa: F401 - the fixture
from tests.core.test_ingest_helpers import write_raster

pytestmark = pytest.mark.skipif(find_pg_bin() is None, reason="PostgreSQL server not installed")


@pytest.fixture
def team(cluster_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Team:
    """Initialised by the superuser; an admin (ann), readers alice and bob, adjudicators carol
    and dave; three images imported by the admin."""
    t = Team(cluster_url, tmp_path)
    assert t.cli("skelex", "team", "init") == 0
    assert t.cli("skelex", "team", "add-user", "ann", "--role", "admin") == 0
    for name, role in (("alice", "reader"), ("bob", "reader"), ("carol", "adjudicator")):
        assert t.cli("ann", "team", "add-user", name, "--role", role) == 0
    assert t.cli("ann", "team", "add-user", "dave", "--role", "adjudicator") == 0
    admin = t.db("ann")
    with admin.write() as session:
        for i in range(3):
            image = add_image(session, sop=f"1.2.3.{i}")
            image.file_path = str(tmp_path / "shared" / f"{i}.png")  # the export reads it
            write_raster(Path(image.file_path), np.full((64, 64), 40 * i, np.uint8))
    admin.dispose()
    capsys.readouterr()
    return t


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().err.strip()


def _json(capsys: pytest.CaptureFixture[str]) -> object:
    return json.loads(capsys.readouterr().out)


def test_init_needs_postgres_and_users_are_added_by_an_admin(
    team: Team, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite = ["--data-dir", str(tmp_path / "solo"), "team", "init"]
    assert main(sqlite) == 1
    assert "team mode needs a shared PostgreSQL database" in _error(capsys)
    assert team.cli("alice", "team", "add-user", "mallory", "--role", "admin") == 1
    assert "cannot add user 'mallory'" in _error(capsys)
    assert team.cli("ann", "team", "add-user", "skelex_admin", "--role", "admin") == 1
    assert "is reserved" in _error(capsys)
    # a second init (after an upgrade, say) changes nothing and fails nothing
    assert team.cli("skelex", "team", "init", "--json") == 0
    assert set(_json(capsys)["rls"]) == {
        "assignments",
        "final_labels",
        "labels",
        "measurements",
        "regions",
    }
    engine = create_engine(team.url("skelex"))
    with engine.connect() as conn:
        roles = dict(
            conn.execute(
                text(
                    "SELECT u.rolname, r.rolname FROM pg_auth_members m "
                    "JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member "
                    "WHERE r.rolname LIKE 'skelex_%' AND u.rolname IN "
                    "('alice', 'bob', 'carol', 'ann')"
                )
            ).all()
        )
        logins = dict(conn.execute(text("SELECT rolname, rolcanlogin FROM pg_roles")).all())
    engine.dispose()
    assert roles == {
        "alice": "skelex_reader",
        "bob": "skelex_reader",
        "carol": "skelex_adjudicator",
        "ann": "skelex_admin",
    }
    assert not any(logins[g] for g in ("skelex_reader", "skelex_adjudicator", "skelex_admin"))


def test_a_reader_writes_only_their_own_decisions_under_their_own_name(team: Team) -> None:
    ws = open_workspace(
        Settings(data_dir=team.tmp_path / "a", db_url=team.url("alice"), reader="bob")
    )
    assert ws.settings.reader == "alice"  # the session user, not the setting
    confirm_label(ws.db, 1, "kl_grade", 2, ws.settings.reader)
    with pytest.raises(DBAPIError, match="you are alice, not bob"):
        confirm_label(ws.db, 1, "kl_grade", 3, "bob")
    with pytest.raises(DBAPIError, match="you are alice, not bob"), ws.db.engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO labels (image_id, task_id, uncertain, source, reader, "
                "prediction_relation, created_at) SELECT 1, id, false, 'human', 'bob', 'none', "
                "now() FROM tasks WHERE name = 'kl_grade'"
            )
        )
    bob = team.db("bob")
    confirm_label(bob, 1, "kl_grade", 4, "bob")  # bob's own row: alice's stays current
    with bob.read() as s:
        current = {(lv.reader, lv.value) for lv in current_labels(s, "kl_grade")}
    assert current == {("alice", "2"), ("bob", "4")}
    with bob.read() as s:
        alices = s.scalar(select(Label.id).where(Label.reader == "alice"))
    assert alices is not None
    with pytest.raises(DBAPIError, match="is the decision of alice: only alice can"):
        undo_label(bob, alices, "bob")
    with pytest.raises(DBAPIError, match="is the decision of alice"), bob.engine.begin() as c:
        c.execute(text("UPDATE labels SET retracted_at = now() WHERE reader = 'alice'"))
    with pytest.raises(DBAPIError, match="permission denied"), bob.engine.begin() as c:
        c.execute(text("DELETE FROM labels"))
    with pytest.raises(DBAPIError, match="permission denied"), bob.engine.begin() as c:
        c.execute(text("UPDATE projects SET blinded = false"))
    with pytest.raises(DBAPIError, match="must be owner"), bob.engine.begin() as c:
        c.execute(text("ALTER TABLE labels ADD COLUMN x integer"))
    ws.close()
    bob.dispose()


def _read(team: Team, user: str, image_id: int, value: object) -> None:
    db = team.db(user)
    confirm_label(db, image_id, "kl_grade", value, user)
    db.dispose()


def test_blinded_project_assignments_adjudication_and_export(
    team: Team, capsys: pytest.CaptureFixture[str]
) -> None:
    create = ["team", "project", "create", "knees", "--images", "ids=1,2,3"]
    create += ["--task", "kl_grade", "--reader", "alice", "--reader", "bob", "--reads", "2"]
    assert team.cli("alice", *create, "--blinded") == 1  # only an admin creates projects
    assert "only a team admin (skelex_admin) can create a project: you are connected as alice" in (
        _error(capsys)
    )
    assert team.cli("ann", *create, "--reads", "3") == 1
    assert "--reads 3 needs at least 3 readers" in _error(capsys)
    assert team.cli("ann", *create, "--reader", "mallory") == 1
    assert "'mallory' is not a reader of this team database" in _error(capsys)
    assert team.cli("ann", *create, "--blinded", "--show-ai") == 0
    assert "knees: 3 images" in capsys.readouterr().out

    assert team.cli("alice", "worklist", "--json") == 0
    assert sorted(r["image_id"] for r in _json(capsys)["rows"]) == [1, 2, 3]
    _read(team, "alice", 1, 2)
    _read(team, "bob", 1, 3)
    _read(team, "alice", 2, 1)
    _read(team, "bob", 2, 1)
    # blinded: each reader sees only their own decisions, in the label list and the review
    for reader, mine in (("alice", {"2", "1"}), ("bob", {"3", "1"})):
        assert team.cli(reader, "label", "list", "--json") == 0
        rows = _json(capsys)
        assert {r["reader"] for r in rows} == {reader} and {r["value"] for r in rows} == mine
    bob = team.db("bob")  # the review panel of image 1: bob's own decision only
    with bob.read() as s:
        (state,) = [st for st in task_states(s, 1) if st.name == "kl_grade"]
    assert (state.reader, state.value) == ("bob", "3")
    bob.dispose()
    assert team.cli("alice", "team", "queue") == 1
    assert "only an adjudicator (skelex_adjudicator) can see the adjudication queue" in (
        _error(capsys)
    )
    assert (
        team.cli(
            "alice",
            "team",
            "adjudicate",
            "1",
            "--task",
            "kl_grade",
            "--value",
            "2",
            "--version",
            "0",
        )
        == 1
    )
    assert "only an adjudicator" in _error(capsys)
    alice = team.db("alice")
    with pytest.raises(DBAPIError, match="permission denied"), alice.engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO final_labels (image_id, task_id, uncertain, version, adjudicator, "
                "provenance, decided_at) SELECT 1, id, false, 1, 'alice', '{}', now() FROM tasks "
                "WHERE name = 'kl_grade'"
            )
        )
    alice.dispose()

    # the adjudicator sees both reads side by side; image 3 is still being read
    assert team.cli("carol", "team", "queue", "--json") == 0
    queue = _json(capsys)
    assert [(q["image_id"], q["state"]) for q in queue] == [(1, "disagree"), (2, "agree")]
    assert {r["reader"]: r["value"] for r in queue[0]["reads"]} == {"alice": "2", "bob": "3"}
    assert queue[0]["version"] == 0
    adjudicate = ["team", "adjudicate", "1", "--task", "kl_grade"]
    assert team.cli("carol", *adjudicate, "--value", "3", "--version", "0", "--json") == 0
    final = _json(capsys)
    assert (final["version"], final["adjudicator"], final["value"]) == (1, "carol", "3")
    assert {r["reader"] for r in final["provenance"]["reads"]} == {"alice", "bob"}
    assert final["provenance"]["ai_shown_to_readers"] is True
    # dave read version 0 too: refused, naming who changed it and when
    assert team.cli("dave", *adjudicate, "--value", "2", "--version", "0") == 1
    err = _error(capsys)
    assert "the final label of image 1 task kl_grade was changed by carol at" in err
    assert "since you read version 0" in err and "nothing was stored" in err
    assert team.cli("dave", *adjudicate, "--value", "2", "--version", "1") == 0
    capsys.readouterr()
    assert team.cli("carol", "team", "queue", "--json") == 0
    assert [(q["image_id"], q["state"]) for q in _json(capsys)] == [(2, "agree")]
    # a blinded reader sees no final label either
    alice = team.db("alice")
    with alice.read() as s:
        assert s.execute(text("SELECT count(*) FROM final_labels")).scalar() == 0
    alice.dispose()

    # the export takes the final label of image 1 (and the image is confirmed by it)
    out = team.tmp_path / "export"
    export = ["export", "--format", "csv", "--out", str(out), "--images", "none"]
    assert team.cli("carol", *export, "--task", "kl_grade") == 0
    assert "exported 1 images" in capsys.readouterr().out  # image 1: every task final
    rows = list(csv.DictReader((out / "labels.csv").open()))
    by_sop = {r["sop_instance_uid"]: r for r in rows}
    assert by_sop["1.2.3.0"]["kl_grade"] == "2" and by_sop["1.2.3.0"]["source"] == "final"
    assert by_sop["1.2.3.0"]["reader"] == "dave"

    # closing the project ends the blinding
    assert team.cli("ann", "team", "project", "close", "knees") == 0
    assert "knees: 3 images" in capsys.readouterr().out
    assert team.cli("alice", "label", "list", "--json") == 0
    assert {r["reader"] for r in _json(capsys)} == {"alice", "bob"}


HOLDER = """
import sys
from sqlalchemy import text
from skelex_desktop.core.db.engine import Database

db = Database(sys.argv[1])
with db.write() as session:
    session.execute(text(
        "INSERT INTO final_labels (image_id, task_id, project_id, value, uncertain, version, "
        "adjudicator, provenance, decided_at) SELECT 1, t.id, p.id, '\\"1\\"', false, 1, '', "
        "'{}', now() FROM tasks t, projects p WHERE t.name = 'kl_grade'"
    ))
    print("held", flush=True)
    sys.stdin.readline()
print("committed", flush=True)
"""


def test_two_adjudicators_racing_for_one_version(
    team: Team, capsys: pytest.CaptureFixture[str]
) -> None:
    """Process A (dave) stores version 1 and holds its transaction; process B (carol, the
    CLI) read version 0 too and waits on the unique key; A commits: B is refused by name."""
    create = ["team", "project", "create", "race", "--images", "ids=1", "--task", "kl_grade"]
    assert team.cli("ann", *create, "--reader", "alice", "--reader", "bob", "--reads", "2") == 0
    capsys.readouterr()
    _read(team, "alice", 1, 0)
    _read(team, "bob", 1, 4)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, team.url("dave")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "held"
    command = [sys.executable, "-m", "skelex_desktop", "--db", team.url("carol"), "--data-dir"]
    command += [str(team.tmp_path / "carol"), "team", "adjudicate", "1", "--task", "kl_grade"]
    racer = subprocess.Popen(
        [*command, "--value", "4", "--version", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watcher = create_engine(team.url("skelex"), isolation_level="AUTOCOMMIT")
    deadline = time.monotonic() + 60
    with watcher.connect() as conn:
        while time.monotonic() < deadline and racer.poll() is None:
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = 'carol' "
                    "AND wait_event_type = 'Lock'"
                )
            ).scalar()
            if waiting:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the second adjudicator never waited: {racer.communicate()}")
    watcher.dispose()
    holder.stdin.write("\n")
    holder.stdin.flush()
    assert holder.wait(60) == 0
    _, err = racer.communicate(timeout=120)
    assert racer.returncode == 1, err
    assert "the final label of image 1 task kl_grade was changed by dave at" in err
    assert "since you read version 0" in err
    assert team.cli("carol", "team", "show", "1", "--json") == 0
    (item,) = _json(capsys)
    assert (item["version"], item["final"]["adjudicator"], item["final"]["value"]) == (
        1,
        "dave",
        "1",
    )


def test_unblinded_readers_see_each_other_and_keep_their_own_rows(
    team: Team, capsys: pytest.CaptureFixture[str]
) -> None:
    create = ["team", "project", "create", "open", "--images", "ids=1,2", "--task", "kl_grade"]
    create += ["--reader", "alice", "--reader", "bob", "--reads", "1"]
    assert team.cli("ann", *create) == 0
    capsys.readouterr()
    # one read per image, dealt in turn: alice reads image 1, bob image 2
    assert team.cli("alice", "worklist", "--json") == 0
    assert [r["image_id"] for r in _json(capsys)["rows"]] == [1]
    assert team.cli("bob", "worklist", "--json") == 0
    assert [r["image_id"] for r in _json(capsys)["rows"]] == [2]
    assert team.cli("carol", "worklist", "--json") == 0  # not a reader: every image
    assert len(_json(capsys)["rows"]) == 3
    _read(team, "alice", 1, 1)
    _read(team, "bob", 1, 2)
    assert team.cli("alice", "label", "list", "--json") == 0
    assert {(r["reader"], r["value"]) for r in _json(capsys)} == {("alice", "1"), ("bob", "2")}


def test_sqlite_stays_single_user(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No session user on SQLite: the reader is the setting, and a decision supersedes the
    current one whoever made it, as before team mode."""
    ws = open_workspace(Settings(data_dir=tmp_path, reader="dr.solo"))
    assert ws.settings.reader == "dr.solo"
    with ws.db.write() as session:
        image_id = add_image(session).id
    confirm_label(ws.db, image_id, "kl_grade", 1, "dr.solo")
    confirm_label(ws.db, image_id, "kl_grade", 3, "dr.other")
    with ws.db.read() as s:
        assert [(lv.reader, lv.value) for lv in current_labels(s, "kl_grade")] == [
            ("dr.other", "3")
        ]
    ws.close()
    assert main(["--data-dir", str(tmp_path), "--reader", "dr.solo", "worklist", "--json"]) == 0
    assert [r["image_id"] for r in _json(capsys)["rows"]] == [image_id]


def _worklist(team: Team, user: str, capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert team.cli(user, "worklist", "--sort", "image_id", "--ascending", "--json", *args) == 0
    return {r["image_id"]: (r["status"], r["reader"]) for r in _json(capsys)["rows"]}


def test_each_reader_has_their_own_read_state_while_blinded(
    team: Team, capsys: pytest.CaptureFixture[str]
) -> None:
    """alice's Enter is done for alice only: bob's worklist still shows the image to read,
    names no reader, and its status filter uses bob's own state; the image's shared status
    stays until the final labels confirm it, and the database refuses a reader moving it."""
    create = ["team", "project", "create", "knees", "--images", "ids=1,2", "--task", "kl_grade"]
    create += ["--reader", "alice", "--reader", "bob", "--reads", "2", "--blinded"]
    assert team.cli("ann", *create) == 0
    capsys.readouterr()
    alice = team.db("alice")
    confirm_label(alice, 1, "kl_grade", 2, "alice")
    assert _worklist(team, "alice", capsys) == {1: ("in_review", "alice"), 2: ("new", "")}
    confirm_label(alice, 1, "abnormal", 1, "alice")  # required before Enter
    confirm_image(alice, 1, "alice")  # Enter
    assert _worklist(team, "alice", capsys) == {1: ("confirmed", "alice"), 2: ("new", "")}
    assert _worklist(team, "alice", capsys, "--status", "confirmed") == {1: ("confirmed", "alice")}
    with alice.read() as s:
        assert image_details(s, 1).status == "confirmed"  # the review panel: her own state
    # bob: nothing read yet, whatever alice did; no reader named
    assert _worklist(team, "bob", capsys) == {1: ("new", ""), 2: ("new", "")}
    assert _worklist(team, "bob", capsys, "--status", "confirmed") == {}
    assert _worklist(team, "bob", capsys, "--status", "new") == {1: ("new", ""), 2: ("new", "")}
    # the shared image row did not move: not confirmed for anyone, no reader
    assert _worklist(team, "carol", capsys)[1] == ("new", "")
    bob = team.db("bob")
    with bob.read() as s:  # alice's assignment is hers alone while blinded
        rows = s.execute(text("SELECT reader, status FROM assignments ORDER BY image_id")).all()
        assert [tuple(r) for r in rows] == [("bob", "assigned"), ("bob", "assigned")]
    with bob.engine.begin() as c:  # invisible, so not bob's to move
        moved = c.execute(text("UPDATE assignments SET status = 'done' WHERE reader = 'alice'"))
        assert moved.rowcount == 0
    for change in ("status = 'confirmed'", "reader = 'bob'"):
        with (
            pytest.raises(DBAPIError, match="image 1 is read in an active project"),
            bob.engine.begin() as c,
        ):
            c.execute(text(f"UPDATE images SET {change} WHERE id = 1"))
    with pytest.raises(DBAPIError, match="permission denied"), bob.engine.begin() as c:
        c.execute(text("UPDATE assignments SET reader = 'alice' WHERE reader = 'bob'"))
    # undoing Enter puts alice's own read back in review
    reopen_image(alice, 1, "alice", "in_review")
    assert _worklist(team, "alice", capsys)[1] == ("in_review", "alice")
    confirm_image(alice, 1, "alice")
    confirm_label(bob, 1, "kl_grade", 2, "bob")
    confirm_label(bob, 1, "abnormal", 0, "bob")
    confirm_image(bob, 1, "bob")
    assert _worklist(team, "bob", capsys)[1] == ("confirmed", "bob")
    assert _worklist(team, "carol", capsys)[1] == ("new", "")
    # the final label confirms the image for everyone
    adjudicate = ["team", "adjudicate", "1", "--task", "kl_grade", "--value", "2"]
    assert team.cli("carol", *adjudicate, "--version", "0") == 0
    capsys.readouterr()
    assert _worklist(team, "carol", capsys)[1] == ("confirmed", "")
    with team.db("ann").read() as s:
        states = s.execute(
            text("SELECT reader, status, read_at IS NOT NULL FROM assignments WHERE image_id = 1")
        ).all()
    assert sorted(tuple(r) for r in states) == [("alice", "done", True), ("bob", "done", True)]
    alice.dispose()
    bob.dispose()


def test_export_with_each_readers_reads_beside_the_final_label(
    team: Team, capsys: pytest.CaptureFixture[str]
) -> None:
    create = ["team", "project", "create", "knees", "--images", "ids=1,2", "--task", "kl_grade"]
    create += ["--reader", "alice", "--reader", "bob", "--reads", "2", "--blinded"]
    assert team.cli("ann", *create) == 0
    _read(team, "alice", 1, 2)
    _read(team, "bob", 1, 3)
    _read(team, "alice", 2, 1)
    _read(team, "bob", 2, 1)
    for image, value in (("1", "3"), ("2", "1")):
        adjudicate = ["team", "adjudicate", image, "--task", "kl_grade", "--value", value]
        assert team.cli("carol", *adjudicate, "--version", "0") == 0
    capsys.readouterr()
    export = ["export", "--format", "csv,jsonl", "--images", "none", "--task", "kl_grade"]
    out = team.tmp_path / "reads"
    assert team.cli("carol", *export, "--reads", "--out", str(out)) == 0
    capsys.readouterr()
    header = (out / "labels.csv").read_text().splitlines()[0].split(",")
    assert header[-2:] == ["kl_grade__alice", "kl_grade__bob"]
    rows = {r["sop_instance_uid"]: r for r in csv.DictReader((out / "labels.csv").open())}
    first, second = rows["1.2.3.0"], rows["1.2.3.1"]
    assert (first["kl_grade"], first["source"], first["reader"]) == (
        "3",
        "final",
        "alice;bob;carol",
    )
    assert (first["kl_grade__alice"], first["kl_grade__bob"]) == ("2", "3")
    assert (second["kl_grade"], second["kl_grade__alice"], second["kl_grade__bob"]) == ("1",) * 3
    jsonl = [json.loads(line) for line in (out / "labels.jsonl").read_text().splitlines()]
    assert {(r["kl_grade"], r["kl_grade__alice"], r["kl_grade__bob"]) for r in jsonl} == {
        ("3", "2", "3"),
        ("1", "1", "1"),
    }
    # without --reads: the final labels only, as before
    assert team.cli("carol", *export, "--out", str(team.tmp_path / "plain")) == 0
    plain = (team.tmp_path / "plain" / "labels.csv").read_text().splitlines()[0]
    assert "__" not in plain
    # de-identified: the readers are pseudonyms in the column names too (the factory's patient
    # name "Test^Patient" would be found in the manifest's word "patient")
    admin = team.db("ann")
    with admin.write() as session:
        session.execute(text("UPDATE patients SET name = 'Doe^Jane'"))
    admin.dispose()
    deid = team.tmp_path / "deid"
    assert team.cli("carol", *export, "--reads", "--deidentify", "--out", str(deid)) == 0
    text_ = (deid / "labels.csv").read_text() + (deid / "labels.jsonl").read_text()
    assert "alice" not in text_ and "bob" not in text_ and "carol" not in text_
    (row,) = [r for r in csv.DictReader((deid / "labels.csv").open()) if r["kl_grade"] == "3"]
    assert (row["kl_grade__R01"], row["kl_grade__R02"]) == ("2", "3")  # alice, bob
    assert row["reader"] == "R01;R02;R03"
    # one reader's labels and every reader's reads do not go together
    capsys.readouterr()
    assert team.cli("carol", *export, "--reads", "--reader", "bob", "--out", str(out / "x")) == 2
    assert "--reads adds every reader's reads" in _error(capsys)
    # a blinded reader exports their own reads only (row-level security)
    assert team.cli("ann", "team", "project", "reopen", "knees") == 0
    mine = team.tmp_path / "alice-export"
    assert team.cli("alice", *export, "--status", "any", "--reads", "--out", str(mine)) == 0
    header = (mine / "labels.csv").read_text().splitlines()[0]
    assert "kl_grade__alice" in header and "bob" not in header
