"""Training in a child process: stored versions, predictions, roll back, cancel and crash."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import ModelVersion, Prediction
from skelex_desktop.core.heads import training_job as train_mod
from skelex_desktop.core.heads.model import HeadWeights
from skelex_desktop.core.heads.training_job import TrainingError, train_head
from skelex_desktop.core.heads.versions import activate_version, list_versions
from skelex_desktop.core.inference.package import sha256_bytes
from skelex_desktop.core.inference.registry import Registry
from skelex_desktop.core.progress import Cancelled, RecordingProgress
from skelex_desktop.core.review.decisions import task_states
from skelex_desktop.core.settings import Settings
from tests.core.test_heads_dataset import make_labelled

FRACTURE = [0, 1] * 9


@pytest.fixture
def labelled(db: Database, settings: Settings) -> list[int]:
    sha = Registry.from_settings(settings).manifest(settings.active_model).embedding_identity
    return make_labelled(db, settings.data_dir, {"fracture": FRACTURE}, sha=sha, extra_unlabelled=2)


def _fracture(db: Database, image_id: int):
    with db.read() as s:
        return next(st for st in task_states(s, image_id) if st.name == "fracture")


def _nothing_stored(db: Database, data_dir: Path) -> None:
    with db.read() as s:
        assert s.scalar(select(func.count()).select_from(ModelVersion)) == 0
        assert s.scalar(select(func.count()).select_from(Prediction)) == 0
    assert list((data_dir / "heads").iterdir()) == []


def test_versions_predictions_and_roll_back(
    db: Database, settings: Settings, labelled: list[int]
) -> None:
    progress = RecordingProgress()
    first = train_head(db, settings, ["fracture"], folds=3, seed=1, progress=progress)
    assert (first.name, first.version) == ("head-fracture", "1")
    assert progress.statuses[-1] == "done" and progress.done == progress.total == 4
    head = first.folder / "head.npz"
    versions = {v.version: v for v in list_versions(db)}
    assert versions["1"].file_sha256["head.npz"] == sha256_bytes(head.read_bytes())
    assert versions["1"].active and versions["1"].predictions == 20  # every embedded image
    assert versions["1"].label_counts["fracture"]["per_class"] == {"no fracture": 9, "fracture": 9}
    cv = versions["1"].metrics["cv"]["fracture"]
    assert (
        cv["auroc"] > 0.9
        and "ece_calibrated" in cv
        and len(versions["1"].metrics["fold_metrics"]) == 3
    )
    state = _fracture(db, labelled[1])
    assert state.method == "task head" and state.suggestion == 1 and state.probability > 0.5
    extra = _fracture(db, labelled[-1])  # unlabelled, embedded: a suggestion too
    assert extra.has_suggestion
    weights = HeadWeights.load(head)
    assert weights.temperatures["fracture"] == pytest.approx(
        versions["1"].metrics["cv"]["fracture"]["temperature"]
    )

    second = train_head(db, settings, ["fracture"], folds=3, seed=2)
    versions = {v.version: v for v in list_versions(db)}
    assert second.version == "2" and versions["2"].parent_id == versions["1"].id
    assert versions["2"].active and not versions["1"].active
    assert _fracture(db, labelled[1]).prediction_id != state.prediction_id
    activate_version(db, "head-fracture", "1", "dr.test")
    assert _fracture(db, labelled[1]).prediction_id == state.prediction_id


def test_cancel_kills_the_child_and_stores_nothing(
    db: Database, settings: Settings, labelled: list[int]
) -> None:
    progress = RecordingProgress()
    progress.cancel()
    with pytest.raises(Cancelled):
        train_head(db, settings, ["fracture"], folds=3, progress=progress)
    _nothing_stored(db, settings.data_dir)


def test_a_crashed_child_stores_nothing(
    db: Database, settings: Settings, labelled: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(train_mod, "WORKER", "skelex_desktop.no_such_worker")
    with pytest.raises(TrainingError, match="No module named"):
        train_head(db, settings, ["fracture"], folds=3)
    _nothing_stored(db, settings.data_dir)


def test_worker_reports_its_own_errors(tmp_path: Path) -> None:
    bad = tmp_path / "broken.npz"
    np.savez(bad, x=np.zeros(3))
    with pytest.raises(TrainingError, match="KeyError"):
        train_mod.run_worker(bad, tmp_path / "head.npz", 3, 0, 1)
    assert not (tmp_path / "head.npz").exists()
