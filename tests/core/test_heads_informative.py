"""Active learning: unlabelled images ranked for the active head, in the worklist and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from skelex_desktop.cli import main
from skelex_desktop.core.analysis.pipeline import analyse_images
from skelex_desktop.core.db.models import Image
from skelex_desktop.core.heads.informative import informative_image_ids
from skelex_desktop.core.heads.training_job import train_head
from skelex_desktop.core.inference.service import ErrorMapService
from skelex_desktop.core.review.labels import confirm_label
from skelex_desktop.core.review.worklist import WorklistQuery, query_worklist
from tests.core.test_embeddings import import_synthetic


def test_unlabelled_images_are_ranked_and_listed_in_that_order(workspace, tmp_path: Path, capsys):
    db, settings = workspace.db, workspace.settings
    service = ErrorMapService(settings, "skelex-demo")
    base = ["--data-dir", str(settings.data_dir)]
    assert main([*base, "worklist", "--informative"]) == 2
    assert "no unlabelled image has a task-head prediction" in capsys.readouterr().err

    truth = import_synthetic(db, settings.data_dir, tmp_path / "s", n=12, seed=21)
    with db.read() as s:
        images = dict(s.execute(select(Image.sop_instance_uid, Image.id)).all())
    by_class: dict[str, list[int]] = {"0": [], "1": []}
    for sop, image_id in sorted(images.items()):
        by_class[truth[sop]["abnormal"]].append(image_id)
    labelled = by_class["0"][:3] + by_class["1"][:3]
    for image_id in labelled:
        confirm_label(db, image_id, "abnormal", 1 if image_id in by_class["1"] else 0, "dr.t")
    analyse_images(db, service, None)
    train_head(db, settings, ["abnormal"], folds=2, seed=0, model="skelex-demo")

    ranked = informative_image_ids(db, settings.data_dir, service.runtime.manifest)
    assert sorted(ranked) == sorted(set(images.values()) - set(labelled))
    with db.read() as s:
        page = query_worklist(s, WorklistQuery(image_ids=ranked, sort="rank", descending=False))
    assert [row.image_id for row in page.rows] == ranked
    workspace.close()
    assert main([*base, "worklist", "--informative", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [r["image_id"] for r in rows] == ranked
