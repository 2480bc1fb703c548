"""Review: suggestions per task, Enter confirms what is shown, AI output stays separate."""

from __future__ import annotations

from sqlalchemy import select

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Image, Label, Prediction, Task
from skelex_desktop.core.review.decisions import (
    confirm_image,
    ensure_model_version,
    image_details,
    reopen_image,
    task_states,
)
from skelex_desktop.core.review.labels import confirm_label
from tests.core.factories import add_image


def _predict(db: Database, image_id: int, task: str, probabilities: dict, score=None) -> int:
    with db.write() as s:
        version = ensure_model_version(s, "skelex-demo", "1", {"a.onnx": "00"})
        task_id = s.scalar(select(Task.id).where(Task.name == task))
        pred = Prediction(
            image_id=image_id,
            model_version_id=version.id,
            task_id=task_id,
            probabilities=probabilities,
            score=score,
        )
        s.add(pred)
        s.flush()
        return pred.id


def test_states_show_suggestions_only_where_a_prediction_exists(db: Database) -> None:
    with db.write() as s:
        image_id = add_image(s).id
    pred_id = _predict(db, image_id, "abnormal", {"abnormal": 0.81}, 0.81)
    _predict(db, image_id, "tumour_category", {"benign": 0.7, "none": 0.2, "malignant": 0.1})
    with db.read() as s:
        states = {st.name: st for st in task_states(s, image_id)}
        details = image_details(s, image_id)
    assert states["abnormal"].suggestion == 1 and states["abnormal"].prediction_id == pred_id
    assert abs(states["abnormal"].probability - 0.81) < 1e-9
    assert states["tumour_category"].suggestion == "benign"
    assert states["tumour_category"].probability == 0.7
    assert not states["fracture"].has_suggestion and states["fracture"].probability is None
    assert (details.rows, details.cols, details.patient_id) == (64, 64, "P1")


def test_enter_confirms_shown_suggestions_but_never_a_readers_decision(db: Database) -> None:
    with db.write() as s:
        image_id = add_image(s).id
    pred_abn = _predict(db, image_id, "abnormal", {"abnormal": 0.9}, 0.9)
    _predict(db, image_id, "implant", {"implant": 0.8}, 0.8)
    confirm_label(db, image_id, "implant", 0, "dr.a")  # the reader disagreed already
    changes = confirm_image(db, image_id, "dr.a")
    assert changes.tasks == {"abnormal"}
    with db.read() as s:
        states = {st.name: st for st in task_states(s, image_id)}
        abnormal = s.get(Label, states["abnormal"].label_id)
        assert s.get(Image, image_id).status == "confirmed"
    assert (abnormal.value, abnormal.prediction_id) == (1, pred_abn)
    assert abnormal.prediction_relation == "confirmed"
    assert states["implant"].value == 0
    assert states["fracture"].label_id is None
    reopen_image(db, image_id, "dr.a", "in_review")
    with db.read() as s:
        assert s.get(Image, image_id).status == "in_review"


def test_first_model_version_is_active_and_reused(db: Database) -> None:
    with db.write() as s:
        first = ensure_model_version(s, "m", "1", {})
        again = ensure_model_version(s, "m", "1", {})
        second = ensure_model_version(s, "m", "2", {})
        assert first.id == again.id and first.active and not second.active


def test_a_heads_cross_validated_auroc_travels_with_its_suggestion(db: Database) -> None:
    with db.write() as s:
        image_id = add_image(s).id
        version = ensure_model_version(s, "head-fracture", "3", {})
        version.metrics = {"cv": {"fracture": {"auroc": 0.71}}}
        task_id = s.scalar(select(Task.id).where(Task.name == "fracture"))
        s.add(
            Prediction(
                image_id=image_id,
                model_version_id=version.id,
                task_id=task_id,
                probabilities={"no fracture": 0.3, "fracture": 0.7},
                score=0.7,
            )
        )
    with db.read() as s:
        states = {st.name: st for st in task_states(s, image_id)}
    assert states["fracture"].cv_auroc == 0.71 and states["fracture"].suggestion == 1
    assert states["implant"].cv_auroc is None


def test_enter_does_not_accept_a_weak_heads_suggestion(db: Database) -> None:
    with db.write() as s:
        image_id = add_image(s).id
        for name, task, auroc in (
            ("head-fracture", "fracture", 0.55),
            ("head-implant", "implant", 0.9),
        ):
            version = ensure_model_version(s, name, "1", {})
            version.metrics = {"cv": {task: {"auroc": auroc}}}
            task_id = s.scalar(select(Task.id).where(Task.name == task))
            s.add(
                Prediction(
                    image_id=image_id,
                    model_version_id=version.id,
                    task_id=task_id,
                    probabilities={task: 0.8},
                    score=0.8,
                )
            )
    with db.read() as s:
        states = {st.name: st for st in task_states(s, image_id)}
    assert states["fracture"].has_suggestion and not states["fracture"].confirmable
    assert states["implant"].confirmable
    confirm_label(db, image_id, "abnormal", 1, "dr.a")  # the required task, decided
    changes = confirm_image(db, image_id, "dr.a")
    assert changes.tasks == {"implant"}
