"""A small labelled workspace built from SynthMSK studies, shared by the export tests."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import select

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Image, Prediction, Task
from skelex_desktop.core.ingest import ImportOptions, import_paths
from skelex_desktop.core.review.decisions import confirm_image, ensure_model_version
from skelex_desktop.core.review.labels import confirm_label
from skelex_desktop.core.review.measurements import add_measurement
from skelex_desktop.core.review.regions import Box, add_region
from skelex_desktop.core.settings import Settings
from skelex_desktop.core.synth import SynthConfig, generate_dataset
from skelex_desktop.core.workspace import Workspace, open_workspace

READER = "dr.export"
N_IMAGES = 16


@dataclass
class LabelledSet:
    synth_dir: Path
    image_ids: list[int]
    truth: dict[int, dict[str, str]]  # image id -> ground-truth row
    error_map: Path
    model_label: str


def build_labelled_set(
    db: Database, data_dir: Path, root: Path, n: int = N_IMAGES, seed: int = 3
) -> LabelledSet:
    """Generate, import, label (fracture, tumour category), box and confirm `n` images."""
    synth_dir = root / "synth"
    result = generate_dataset(
        synth_dir,
        SynthConfig(n=n, seed=seed, abnormal_fraction=0.5, fmt="dicom", size=256, workers=1),
    )
    import_paths(db, list(result.files), ImportOptions(data_dir=data_dir, reader=READER, workers=1))
    with open(synth_dir / "ground_truth.csv", newline="", encoding="utf-8") as fh:
        by_sop = {row["sop_uid"]: row for row in csv.DictReader(fh)}
    with db.read() as session:
        images = list(session.execute(select(Image.id, Image.sop_instance_uid).order_by(Image.id)))
    error_map = root / "maps" / "map0.npy"
    error_map.parent.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.save(error_map, rng.random((64, 64), dtype=np.float32))
    with db.write() as session:
        model = ensure_model_version(session, "skelex-test", "1.0", {"model.onnx": "0" * 64})
        fracture = session.scalar(select(Task).where(Task.name == "fracture"))
        prediction = Prediction(
            image_id=images[0][0],
            model_version_id=model.id,
            task_id=fracture.id,
            probabilities={"fracture": 0.8},
            score=0.8,
            error_map_path=str(error_map),
        )
        session.add(prediction)
        session.flush()
        prediction_id = prediction.id
    with db.write() as session:  # this set leaves "abnormal" unlabelled: not required here
        session.scalar(select(Task).where(Task.name == "abnormal")).required = False
    truth: dict[int, dict[str, str]] = {}
    for k, (image_id, sop) in enumerate(images):
        row = by_sop[sop]
        truth[image_id] = row
        confirm_label(
            db,
            image_id,
            "fracture",
            row["fracture"],
            READER,
            uncertain=(k % 7 == 5),
            prediction_id=prediction_id if k == 0 else None,
        )
        confirm_label(db, image_id, "tumour_category", row["tumour_category"], READER)
        if row["fracture"] == "1":
            add_region(db, image_id, "fracture", Box(40, 50, 120, 140), READER)
        if k == 0:  # a reader's length measurement travels with the labels
            add_measurement(db, image_id, "length", [(10.0, 20.0), (40.0, 60.0)], READER)
        confirm_image(db, image_id, READER)
    return LabelledSet(synth_dir, [i for i, _ in images], truth, error_map, "skelex-test:1.0")


@dataclass
class ExportWorld:
    workspace: Workspace
    labelled: LabelledSet
    root: Path

    @property
    def db(self) -> Database:
        return self.workspace.db


def open_world(root: Path, n: int = N_IMAGES) -> ExportWorld:
    """A fresh workspace under `root` holding a labelled SynthMSK set."""
    data_dir = root / "data"
    workspace = open_workspace(Settings(data_dir=data_dir, reader="dr.test"))
    return ExportWorld(workspace, build_labelled_set(workspace.db, data_dir, root, n=n), root)


def leftovers(parent: Path) -> list[str]:
    """Staging folders an export left next to its target."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(".skelex-export-"))
