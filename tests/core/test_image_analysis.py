"""Recording the zero-shot abnormal prediction: once per model version, a suggestion only
when the score has a calibrated threshold."""

from __future__ import annotations

from skelex_desktop.core.analysis.image_analysis import record_zero_shot
from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Image, Prediction
from skelex_desktop.core.review.decisions import task_states
from tests.core.factories import add_image

MODEL = ("skelex-demo", "1", "abc123")


def _abnormal(db: Database, image_id: int):
    with db.read() as s:
        return next(st for st in task_states(s, image_id) if st.name == "abnormal")


def test_calibrated_score_becomes_a_suggestion_and_updates_the_worklist(db: Database) -> None:
    with db.write() as s:
        image_id = add_image(s).id
    spots = [{"x0": 1, "y0": 2, "x1": 5, "y1": 6, "score": 3.0}]
    first = record_zero_shot(db, image_id, MODEL, score=0.9, threshold=0.5, hotspots=spots)
    again = record_zero_shot(db, image_id, MODEL, score=0.1, threshold=0.5, hotspots=[])
    assert first == again
    state = _abnormal(db, image_id)
    assert (state.suggestion, state.score, state.threshold) == (1, 0.9, 0.5)
    assert state.probability is None and state.method == "zero-shot error map"
    with db.read() as s:
        image = s.get(Image, image_id)
        assert (image.status, image.ai_score) == ("analysed", 0.9)
        assert s.get(Prediction, first).details["hotspots"] == spots


def test_uncalibrated_score_suggests_nothing(db: Database) -> None:
    with db.write() as s:
        image_id = add_image(s).id
    record_zero_shot(db, image_id, MODEL, score=5.0, threshold=None, hotspots=[])
    state = _abnormal(db, image_id)
    assert not state.has_suggestion and state.score == 5.0


def test_below_threshold_suggests_normal(db: Database) -> None:
    with db.write() as s:
        image_id = add_image(s).id
    record_zero_shot(db, image_id, MODEL, score=0.2, threshold=0.5, hotspots=[])
    assert _abnormal(db, image_id).suggestion == 0


def test_a_package_recalibrated_in_place_adds_a_newer_prediction(db: Database) -> None:
    """Same name and version, another sha256 (e.g. `model calibrate` in place): the new map's
    call is stored as a newer row and shown; the earlier row stays for provenance."""
    with db.write() as s:
        image_id = add_image(s).id
    before = record_zero_shot(db, image_id, MODEL, score=0.9, threshold=0.5, hotspots=[])
    recalibrated = (*MODEL[:2], "def456")
    after = record_zero_shot(db, image_id, recalibrated, score=0.3, threshold=0.5, hotspots=[])
    assert after != before
    assert record_zero_shot(db, image_id, recalibrated, score=0.3, threshold=0.5, hotspots=[]) == (
        after
    )
    state = _abnormal(db, image_id)
    assert (state.suggestion, state.score) == (0, 0.3)
    with db.read() as s:
        assert s.get(Prediction, before).details["package"] == "abc123"
        assert s.get(Prediction, after).details["package"] == "def456"
        assert s.get(Image, image_id).ai_score == 0.3


def test_a_weak_maps_call_is_shown_but_not_confirmable(db: Database) -> None:
    """A map measured below the review's bar on its calibration set (image AUROC < 0.70)
    suggests like a weak head: shown, never accepted by a bare Enter."""
    with db.write() as s:
        weak_id, good_id, unmeasured_id = (add_image(s, sop=f"1.2.9.{i}").id for i in range(3))
    for image_id, auroc in ((weak_id, 0.58), (good_id, 0.91), (unmeasured_id, None)):
        record_zero_shot(
            db, image_id, MODEL, score=0.9, threshold=0.5, hotspots=[], calibration_auroc=auroc
        )
    weak, good, unmeasured = (_abnormal(db, i) for i in (weak_id, good_id, unmeasured_id))
    assert weak.has_suggestion and weak.calibration_auroc == 0.58 and not weak.confirmable
    assert good.confirmable and good.measured_auroc == 0.91
    assert unmeasured.confirmable and unmeasured.measured_auroc is None
