"""Labels: each decision is committed and audited; history is kept; AI output stays apart."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import AuditEvent, Image, Label, ModelVersion, Prediction, Task
from skelex_desktop.core.review.label_import import import_labels_csv
from skelex_desktop.core.review.labels import (
    LabelError,
    confirm_label,
    current_labels,
    undo_label,
)
from tests.core.factories import add_image


@pytest.fixture
def image_id(db: Database) -> int:
    with db.write() as s:
        return add_image(s).id


def test_a_new_decision_supersedes_and_keeps_history(db: Database, image_id: int) -> None:
    first = confirm_label(db, image_id, "fracture", 1, "dr.a")
    second = confirm_label(db, image_id, "fracture", "no fracture", "dr.b")
    with db.read() as s:
        rows = s.scalars(select(Label).order_by(Label.id)).all()
        assert [r.value for r in rows] == [1, 0]
        assert rows[0].superseded_by == rows[1].id and rows[1].superseded_by is None
        assert s.get(Image, image_id).status == "in_review"
        audits = s.scalars(select(AuditEvent).where(AuditEvent.action == "label.set")).all()
        assert [a.after["reader"] for a in audits] == ["dr.a", "dr.b"]
        assert audits[1].before["value"] == 1
        current = current_labels(s)
    assert first.labels != second.labels and second.worklist
    assert [(c.task, c.value, c.reader) for c in current] == [("fracture", 0, "dr.b")]


@pytest.mark.parametrize(
    ("task", "value", "stored"),
    [
        ("tumour_category", "benign", "benign"),
        ("kl_grade", 3, "3"),
        ("kl_grade", "4", "4"),
        ("implant", "implant", 1),
        ("abnormal", "0", 0),
    ],
)
def test_values_are_normalised_per_task_kind(db: Database, image_id: int, task, value, stored):
    confirm_label(db, image_id, task, value, "dr.a")
    with db.read() as s:
        assert [c.value for c in current_labels(s, task)] == [stored]


@pytest.mark.parametrize(
    ("task", "value", "message"),
    [
        ("tumour_category", "cancer", "not one of"),
        ("kl_grade", 7, "not one of"),
        ("fracture", "maybe", "binary"),
    ],
)
def test_invalid_values_are_refused_and_nothing_is_written(db, image_id, task, value, message):
    with pytest.raises(LabelError, match=message):
        confirm_label(db, image_id, task, value, "dr.a")
    with db.read() as s:
        assert s.scalar(select(func.count(Label.id))) == 0


def test_uncertain_needs_no_value(db: Database, image_id: int) -> None:
    confirm_label(db, image_id, "fracture", None, "dr.a", uncertain=True)
    with db.read() as s:
        (view,) = current_labels(s)
    assert view.uncertain and view.value is None


def test_prediction_confirmed_or_overrode(db: Database, image_id: int) -> None:
    with db.write() as s:
        version = ModelVersion(name="m", version="1")
        s.add(version)
        s.flush()
        task_id = s.scalar(select(Task.id).where(Task.name == "fracture"))
        pred = Prediction(
            image_id=image_id,
            model_version_id=version.id,
            task_id=task_id,
            probabilities={"fracture": 0.9, "no fracture": 0.1},
            score=0.9,
        )
        s.add(pred)
        s.flush()
        pred_id = pred.id
    confirm_label(db, image_id, "fracture", 1, "dr.a", prediction_id=pred_id)
    confirm_label(db, image_id, "fracture", 0, "dr.a", prediction_id=pred_id)
    with db.read() as s:
        relations = s.scalars(select(Label.prediction_relation).order_by(Label.id)).all()
        assert s.get(Prediction, pred_id).score == 0.9  # AI output untouched
    assert relations == ["confirmed", "overrode"]
    with pytest.raises(LabelError, match="not for this image and task"):
        confirm_label(db, image_id, "implant", 1, "dr.a", prediction_id=pred_id)


def test_csv_import_with_a_bad_row_applies_nothing_and_names_every_line(
    db: Database, image_id: int, tmp_path: Path
) -> None:
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text(
        "image,task,value,uncertain\n"
        "1.2.826.0.1.1,fracture,1,\n"
        "1.2.826.0.1.1,kl_grade,9,\n"
        "9.9.9,fracture,1,\n"
        "/nowhere.dcm,implant,,yes\n"
        "1.2.826.0.1.1,nonsense,1,\n"
    )
    result = import_labels_csv(db, csv_file, "dr.csv")
    assert result.imported == 0
    assert [e.split(":")[0] for e in result.errors] == ["line 3", "line 4", "line 6"]
    assert "no image with SOP Instance UID or file path '9.9.9'" in result.errors[1]
    with db.read() as s:
        assert current_labels(s) == []
        assert (
            s.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "label.set")) == 0
        )


def test_csv_import_of_a_valid_file_applies_every_row(
    db: Database, image_id: int, tmp_path: Path
) -> None:
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text(
        "image,task,value,uncertain,reader\n"
        "1.2.826.0.1.1,fracture,1,,dr.other\n"
        "/nowhere.dcm,implant,,yes,\n"
    )
    result = import_labels_csv(db, csv_file, "dr.csv")
    assert (result.imported, result.errors) == (2, [])
    with db.read() as s:
        assert {(v.task, v.uncertain, v.reader) for v in current_labels(s)} == {
            ("fracture", False, "dr.other"),
            ("implant", True, "dr.csv"),
        }


def test_csv_without_required_columns_is_refused(db: Database, tmp_path: Path) -> None:
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("a,b\n1,2\n")
    with pytest.raises(LabelError, match="needs columns"):
        import_labels_csv(db, csv_file, "dr.csv")


def test_undo_restores_the_previous_decision_with_an_audit_row(db: Database, image_id: int):
    confirm_label(db, image_id, "kl_grade", 1, "dr.a")
    second = confirm_label(db, image_id, "kl_grade", 3, "dr.a")
    (second_id,) = second.labels
    undo_label(db, second_id, "dr.a")
    with db.read() as s:
        assert [c.value for c in current_labels(s)] == ["1"]
        assert s.get(Label, second_id).retracted_at is not None
        assert s.scalar(select(func.count(AuditEvent.id)).where(AuditEvent.action == "label.undo"))
    with pytest.raises(LabelError, match="not the current decision"):
        undo_label(db, second_id, "dr.a")
    first_id = current_labels_ids(db)[0]
    undo_label(db, first_id, "dr.a")
    assert current_labels_ids(db) == []


def current_labels_ids(db: Database) -> list[int]:
    with db.read() as s:
        return [c.id for c in current_labels(s)]
