"""Images analysed after a training get the active head's predictions; a damaged head file is
refused with a clear message."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from skelex_desktop.core.analysis.pipeline import analyse_images
from skelex_desktop.core.db.models import Image, ModelVersion, Prediction
from skelex_desktop.core.heads.predict import head_folder
from skelex_desktop.core.heads.region_guided import REGION_METHOD
from skelex_desktop.core.heads.training_job import HEAD_FILE, train_head
from skelex_desktop.core.inference.service import ErrorMapService
from skelex_desktop.core.review.decisions import task_states
from skelex_desktop.core.review.labels import confirm_label
from tests.core.test_embeddings import import_synthetic


def test_new_images_get_head_predictions_and_damage_is_refused(workspace, tmp_path: Path):
    db, settings = workspace.db, workspace.settings
    service = ErrorMapService(settings, "skelex-demo")
    truth = import_synthetic(db, settings.data_dir, tmp_path / "first", n=12, seed=11)
    with db.read() as s:
        first = dict(s.execute(select(Image.sop_instance_uid, Image.id)).all())
    for sop, image_id in first.items():
        confirm_label(db, image_id, "abnormal", truth[sop]["abnormal"], "dr.test")
    analyse_images(db, service, None)
    train_head(db, settings, ["abnormal"], folds=2, seed=0, model="skelex-demo")

    import_synthetic(db, settings.data_dir, tmp_path / "second", n=3, seed=12)
    with db.read() as s:
        new = [
            i for sop, i in s.execute(select(Image.sop_instance_uid, Image.id)) if sop not in first
        ]
    summary = analyse_images(db, service, new)
    with db.read() as s:
        state = next(st for st in task_states(s, new[0]) if st.name == "abnormal")
        version = s.scalars(select(ModelVersion).where(ModelVersion.name == "head-abnormal")).one()
        by_head = s.scalars(
            select(Prediction).where(
                Prediction.model_version_id == version.id, Prediction.image_id.in_(new)
            )
        ).all()
    methods = sorted((p.details or {}).get("method") for p in by_head)
    # whole image and region-guided, once per new image (+ the bundled demo heads' rows)
    assert methods == ["task head"] * len(new) + [REGION_METHOD] * len(new)
    assert summary.head_predictions > len(new) and summary.region_predictions == len(new)
    assert state.method == REGION_METHOD and state.probability is not None
    again = analyse_images(db, service, new)
    assert again.head_predictions == again.region_predictions == 0  # nothing twice

    head = head_folder(settings.data_dir, version.name, version.version) / HEAD_FILE
    head.write_bytes(head.read_bytes() + b"x")
    import_synthetic(db, settings.data_dir, tmp_path / "third", n=1, seed=13)
    damaged = analyse_images(db, service, None)  # every image is reported, none half-predicted
    assert damaged.failed and all(
        "does not match its recorded sha256" in reason for reason in damaged.failed.values()
    )
