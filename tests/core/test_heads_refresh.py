"""Rolling back to an older head: its predictions are recomputed for images analysed since."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from skelex_desktop.cli import main
from skelex_desktop.core.analysis.pipeline import analyse_images
from skelex_desktop.core.db.models import Image, ModelVersion, Prediction
from skelex_desktop.core.heads.training_job import train_head
from skelex_desktop.core.inference.service import ErrorMapService
from skelex_desktop.core.review.decisions import task_states
from skelex_desktop.core.review.labels import confirm_label
from tests.core.test_embeddings import import_synthetic


def test_rollback_recomputes_the_active_versions_predictions(workspace, tmp_path: Path, capsys):
    db, settings = workspace.db, workspace.settings
    service = ErrorMapService(settings, "skelex-demo")
    truth = import_synthetic(db, settings.data_dir, tmp_path / "a", n=10, seed=31)
    with db.read() as s:
        first = dict(s.execute(select(Image.sop_instance_uid, Image.id)).all())
    for sop, image_id in first.items():
        confirm_label(db, image_id, "abnormal", truth[sop]["abnormal"], "dr.t")
    analyse_images(db, service, None)
    train_head(db, settings, ["abnormal"], folds=2, seed=0, model="skelex-demo")
    train_head(db, settings, ["abnormal"], folds=2, seed=1, model="skelex-demo")
    import_synthetic(db, settings.data_dir, tmp_path / "b", n=2, seed=32)
    analyse_images(db, service, None)
    with db.read() as s:
        late = [
            i for sop, i in s.execute(select(Image.sop_instance_uid, Image.id)) if sop not in first
        ]
        v1 = s.scalars(
            select(ModelVersion).where(
                ModelVersion.name == "head-abnormal", ModelVersion.version == "1"
            )
        ).one()
        assert not s.scalars(
            select(Prediction).where(
                Prediction.model_version_id == v1.id, Prediction.image_id.in_(late)
            )
        ).all()
    workspace.close()
    base = ["--data-dir", str(settings.data_dir)]
    assert main([*base, "model-version", "activate", "head-abnormal", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["active"] and out["predictions_added"] == len(late)
    # the refresh is the pipeline: the rolled-back head's region-guided predictions too
    assert out["region_predictions_added"] == len(first) + len(late)
    with db.read() as s:
        state = next(st for st in task_states(s, late[0]) if st.name == "abnormal")
        prediction = s.get(Prediction, state.prediction_id)
        assert prediction.model_version_id == v1.id
