"""Embeddings with the bundled demo model: batched, cached per content and package, and the
`analyze` command (error map + zero-shot prediction + embedding; a second run is free)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Image, Prediction
from skelex_desktop.core.inference.embeddings import embed_images, model_input
from skelex_desktop.core.inference.service import ErrorMapService
from skelex_desktop.core.ingest import ImportOptions, import_paths
from skelex_desktop.core.ingest.pixels import read_frame
from skelex_desktop.core.progress import Cancelled, RecordingProgress
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.synth import SynthConfig, generate_dataset


def import_synthetic(
    db: Database, data_dir: Path, out: Path, n: int, seed: int = 0
) -> dict[str, dict[str, str]]:
    """Tiny synthetic DICOMs imported into `db`; ground-truth rows by SOP Instance UID."""
    result = generate_dataset(
        out, SynthConfig(n=n, seed=seed, abnormal_fraction=0.5, fmt="dicom", size=256, workers=1)
    )
    import_paths(
        db,
        [p for p in out.iterdir() if p.is_dir() and p.name != "masks"],
        ImportOptions(data_dir=data_dir, workers=1),
    )
    with open(result.ground_truth_csv, newline="", encoding="utf-8") as handle:
        return {row["sop_uid"]: row for row in csv.DictReader(handle)}


def labelled_head_on(
    db: Database, settings: Settings, service: ErrorMapService, out: Path
) -> tuple[dict[str, int], Any]:
    """12 imported synthetic images, each with a confirmed "abnormal" label, analysed by
    `service`, and a head trained on them: (image ids by SOP Instance UID, the TrainResult)."""
    from skelex_desktop.core.analysis.pipeline import analyse_images
    from skelex_desktop.core.heads.training_job import train_head
    from skelex_desktop.core.review.labels import confirm_label

    truth = import_synthetic(db, Path(settings.data_dir), out, n=12, seed=11)
    with db.read() as s:
        ids = dict(s.execute(select(Image.sop_instance_uid, Image.id)).all())
    for sop, image_id in ids.items():
        confirm_label(db, image_id, "abnormal", truth[sop]["abnormal"], "dr.test")
    assert analyse_images(db, service, None).embedded == len(ids)
    model = service.runtime.manifest.name
    return ids, train_head(db, settings, ["abnormal"], folds=2, seed=0, model=model)


def image_ids(db: Database) -> list[int]:
    with db.read() as s:
        return list(s.scalars(select(Image.id).order_by(Image.id)))


@pytest.fixture
def demo(settings: Settings) -> ErrorMapService:
    settings.inference_threads = 2
    return ErrorMapService(settings, "skelex-demo")


def test_embeddings_are_batched_cached_and_match_the_runtime(
    db: Database, data_dir: Path, tmp_path: Path, demo: ErrorMapService
) -> None:
    import_synthetic(db, data_dir, tmp_path / "synth", n=5)
    ids = image_ids(db)
    first = embed_images(db, demo, ids, RecordingProgress(), batch_size=3)
    runs = demo.runtime.session_runs
    assert (first.computed, first.cached, runs) == (5, 0, 2)  # 3 + 2
    again = embed_images(db, demo, ids)
    assert (again.computed, again.cached) == (0, 5) and demo.runtime.session_runs == runs
    with db.read() as s:
        image = s.get(Image, ids[0])
        path, frame = Path(image.file_path), image.frame
    decoded = read_frame(path, frame)
    x = model_input(
        decoded.rgb if decoded.rgb is not None else decoded.values, demo.runtime.manifest
    )
    direct = demo.runtime.embed(x[None])[0]
    assert first.vectors[ids[0]].shape == (192,)
    assert np.allclose(again.vectors[ids[0]], direct, atol=1e-5)
    cached = list((data_dir / "cache" / "embeddings").iterdir())
    assert len(cached) == 5 and all(p.suffix == ".npy" for p in cached)
    with pytest.raises(Cancelled):
        embed_images(db, demo, ids, RecordingProgress(cancel_after=0))
    with pytest.raises(ValueError, match="no image with id 999"):
        embed_images(db, demo, [999])


def test_analyze_command_runs_once_then_reads_caches(workspace, tmp_path: Path, capsys) -> None:
    from skelex_desktop.cli import main

    import_synthetic(workspace.db, workspace.settings.data_dir, tmp_path / "synth", n=3)
    workspace.close()
    base = ["--data-dir", str(workspace.settings.data_dir)]
    assert main([*base, "analyze", "--all"]) == 0
    assert "analysed 3 image(s); embeddings: 3 computed, 0 cached" in capsys.readouterr().out
    assert main([*base, "analyze", "--all", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {
        "analysed": 3,
        "embedded": 0,
        "embeddings_cached": 3,
        "head_predictions": 0,
        "region_predictions": 0,
        "failed": {},
    }
    with workspace.db.read() as s:
        rows = s.scalars(select(Prediction)).all()
        assert sum(not p.details.get("bundled") for p in rows) == 3  # one zero-shot row each
        statuses = set(s.scalars(select(Image.status)))
    assert statuses == {"analysed"}
