"""What the AI changed: decisions made through the review session against stored predictions,
reported per reader, task and model version, by the core and by `audit report`."""

from __future__ import annotations

import json

from skelex_desktop.cli import main
from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.review.influence import NO_MODEL, influence_report
from skelex_desktop.core.review.session import ReviewSession
from tests.core.factories import add_image
from tests.core.test_review import _predict


def test_accepted_overridden_uncertain_and_unsuggested_decisions(workspace) -> None:
    db: Database = workspace.db
    with db.write() as s:
        ids = [add_image(s, sop=f"1.2.826.0.7.{i}").id for i in range(3)]
    for image_id in ids:
        _predict(db, image_id, "implant", {"implant": 0.9}, 0.9)  # suggests "implant" (1)
    session = ReviewSession(db, "dr.a")
    for image_id, digit in zip(ids, (1, 0, None), strict=True):
        session.open(image_id)
        session.select_task("implant")
        session.choose(digit) if digit is not None else session.mark_uncertain()
        session.select_task("fracture")  # no prediction: decided without a suggestion
        session.choose(0)
        session.select_task("abnormal")  # required before Enter
        session.choose(0)
        assert session.confirm()
    session.open(ids[1])
    session.select_task("implant")
    session.choose(1)  # a second thought: now agrees; only the current decision counts
    assert session.wait(10)
    session.close()

    with db.read() as s:
        report = influence_report(s)
    rows = {(r.reader, r.task, r.model): r for r in report.rows}
    implant = rows[("dr.a", "implant", "skelex-demo 1")]
    assert (implant.decisions, implant.accepted, implant.overridden) == (3, 2, 0)
    assert (implant.uncertain, implant.shown, implant.agreement) == (1, 3, 1.0)
    fracture = rows[("dr.a", "fracture", NO_MODEL)]
    assert (fracture.decisions, fracture.no_suggestion, fracture.agreement) == (3, 3, None)
    seconds = report.seconds_per_image["dr.a"]
    assert seconds is not None and 0 <= seconds < 60  # three confirmations in a row

    second = ReviewSession(db, "dr.c")  # a second reader overrides dr.a's first image
    second.open(ids[0])
    second.select_task("implant")
    second.choose(0)
    assert second.wait(10)
    second.close()
    with db.read() as s:
        rows = {(r.reader, r.task): r for r in influence_report(s).rows}
    assert rows[("dr.a", "implant")].accepted == 2  # dr.a's own final decisions still count
    assert (rows[("dr.c", "implant")].overridden, rows[("dr.c", "implant")].decisions) == (1, 1)

    workspace.close()
    data_dir = str(workspace.settings.data_dir)
    assert main(["--data-dir", data_dir, "audit", "report", "--json"]) == 0


def test_audit_report_on_the_command_line(workspace, capsys) -> None:
    db: Database = workspace.db
    with db.write() as s:
        image_id = add_image(s).id
    _predict(db, image_id, "abnormal", {"abnormal": 0.8}, 0.8)
    session = ReviewSession(db, "dr.b")
    session.open(image_id)
    session.select_task("abnormal")
    session.choose(0)  # overrides "abnormal"
    assert session.wait(10)
    session.close()
    workspace.close()
    base = ["--data-dir", str(workspace.settings.data_dir)]
    assert main([*base, "audit", "report", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (row,) = data["rows"]
    assert (row["reader"], row["task"], row["overridden"], row["agreement"]) == (
        "dr.b",
        "abnormal",
        1,
        0.0,
    )
    assert main([*base, "audit", "report"]) == 0
    text = capsys.readouterr().out
    assert "dr.b" in text and "abnormal" in text and "0%" in text
