"""A study-scoped task from the command line to the export: decided once in a study, stored on
each of its images, exported once per study in studies.csv (and on each image row)."""

from __future__ import annotations

import csv
from pathlib import Path

from sqlalchemy import select

from skelex_desktop.cli import main
from skelex_desktop.core.db.models import Image, Series
from tests.core.flows import decide
from tests.core.test_embeddings import import_synthetic


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_study_scoped_decision_exports_once_per_study(workspace, tmp_path: Path) -> None:
    db, data_dir = workspace.db, workspace.settings.data_dir
    import_synthetic(db, data_dir, tmp_path / "synth", n=6, seed=3)
    with db.read() as s:
        by_study: dict[int, list[int]] = {}
        for image_id, study_id in s.execute(
            select(Image.id, Series.study_id).join(Series, Image.series_id == Series.id)
        ):
            by_study.setdefault(study_id, []).append(image_id)
    studies = sorted(by_study.values(), key=len, reverse=True)
    assert len(studies[0]) >= 2  # a study of several views
    workspace.close()
    base = ["--data-dir", str(data_dir)]
    assert main([*base, "task", "add", "study_normal", "--kind", "binary", "--scope", "study"]) == 0

    # once for the whole first study, once for the second
    decide(
        data_dir,
        "dr.study",
        [(studies[0][0], "study_normal", 1), (studies[1][0], "study_normal", 0)],
    )

    out = tmp_path / "export"
    assert main([*base, "export", "--format", "csv", "--out", str(out), "--status", "any"]) == 0
    images = {int(r["image_id"]): r for r in _csv(out / "labels.csv")}
    for image_id in studies[0]:
        assert images[image_id]["study_normal"] == "1"
    for image_id in studies[1]:
        assert images[image_id]["study_normal"] == "0"
    rows = {r["study_instance_uid"]: r for r in _csv(out / "studies.csv")}
    assert len(rows) == 2
    first = images[studies[0][0]]["study_instance_uid"]
    assert rows[first]["study_normal"] == "1"
    assert rows[first]["images"] == str(len(studies[0]))
