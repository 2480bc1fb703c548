"""Images analysed after a training get the active head's predictions; a damaged head file is
refused with a clear message."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from skelex_desktop.core.db.models import Image, ModelVersion, Prediction
from skelex_desktop.core.embeddings import analyze_images
from skelex_desktop.core.heads.predict import head_folder
from skelex_desktop.core.heads.train import HEAD_FILE, TrainingError, train_head
from skelex_desktop.core.inference.analysis import ErrorMapService
from skelex_desktop.core.labels import confirm_label
from skelex_desktop.core.review import task_states
from tests.core.test_embeddings import import_synthetic


def test_new_images_get_head_predictions_and_damage_is_refused(workspace, tmp_path: Path):
    db, settings = workspace.db, workspace.settings
    service = ErrorMapService(settings, "skelex-demo")
    truth = import_synthetic(db, settings.data_dir, tmp_path / "first", n=12, seed=11)
    with db.read() as s:
        first = dict(s.execute(select(Image.sop_instance_uid, Image.id)).all())
    for sop, image_id in first.items():
        confirm_label(db, image_id, "abnormal", truth[sop]["abnormal"], "dr.test")
    analyze_images(db, service, None)
    train_head(db, settings, ["abnormal"], folds=2, seed=0, model="skelex-demo")

    import_synthetic(db, settings.data_dir, tmp_path / "second", n=3, seed=12)
    with db.read() as s:
        new = [
            i for sop, i in s.execute(select(Image.sop_instance_uid, Image.id)) if sop not in first
        ]
    summary = analyze_images(db, service, new)
    with db.read() as s:
        state = next(st for st in task_states(s, new[0]) if st.name == "abnormal")
        version = s.scalars(select(ModelVersion).where(ModelVersion.name == "head-abnormal")).one()
        by_head = s.scalars(
            select(Prediction).where(
                Prediction.model_version_id == version.id, Prediction.image_id.in_(new)
            )
        ).all()
    assert len(by_head) == len(new)  # + the bundled demo heads' for the other tasks
    assert summary.head_predictions > len(new)
    assert state.method == "task head" and state.probability is not None
    assert analyze_images(db, service, new).head_predictions == 0  # nothing twice

    head = head_folder(settings.data_dir, version.name, version.version) / HEAD_FILE
    head.write_bytes(head.read_bytes() + b"x")
    import_synthetic(db, settings.data_dir, tmp_path / "third", n=1, seed=13)
    with pytest.raises(TrainingError, match="does not match its recorded sha256"):
        analyze_images(db, service, None)
