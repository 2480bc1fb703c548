"""Training sets from current human labels and cached embeddings."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.heads.training_set import (
    MISSING,
    DatasetError,
    HeadDataset,
    assemble_dataset,
)
from skelex_desktop.core.inference.embeddings import EmbeddingCache, embedding_key
from skelex_desktop.core.review.labels import confirm_label
from tests.core.factories import add_image

SHA = "f" * 64  # the embedding identity the cached embeddings are stored under
MODEL = SimpleNamespace(  # what a Manifest offers
    embedding_identity=SHA, sha256="e" * 64, manifest_shas=("e" * 64,)
)


def make_labelled(
    db: Database,
    data_dir: Path,
    labels: dict[str, list],
    patients: int = 6,
    dim: int = 8,
    sha: str = SHA,
    seed: int = 0,
    extra_unlabelled: int = 0,
) -> list[int]:
    """Images (patient i % `patients`) with embeddings whose first axis encodes the
    binary label, and the given labels (None = no label) per task."""
    rng = np.random.default_rng(seed)
    n = len(next(iter(labels.values())))
    cache = EmbeddingCache.for_data_dir(data_dir)
    ids = []
    for i in range(n + extra_unlabelled):
        with db.write() as s:
            image = add_image(
                s,
                sop=f"1.2.3.{i}",
                patient_id=f"P{i % patients}",
                study_uid=f"1.2.9.{i % patients}",
                series_uid=f"1.2.8.{i % patients}",
            )
            ids.append(image.id)
        vector = rng.normal(size=dim).astype(np.float32)
        first = labels.get("fracture", [None] * n)[i] if i < n else None
        if first is not None:
            vector[0] += 3.0 * (1 if int(first) else -1)
        cache.put(embedding_key(f"1.2.3.{i}", 0, sha), vector)
    for task, values in labels.items():
        for image_id, value in zip(ids, values, strict=False):
            if value is not None:
                confirm_label(db, image_id, task, value, "dr.test")
    return ids


def test_current_certain_human_labels_with_embeddings(db: Database, data_dir: Path) -> None:
    ids = make_labelled(db, data_dir, {"fracture": [0, 1, 0, 1, 0, 1, None, 1]})
    confirm_label(db, ids[0], "fracture", 1, "dr.test")  # supersedes the 0
    confirm_label(db, ids[6], "fracture", None, "dr.test", uncertain=True)
    with db.write() as s:
        no_embedding = add_image(s, sop="9.9", patient_id="P9").id
    confirm_label(db, no_embedding, "fracture", 0, "dr.test")
    data = assemble_dataset(db, data_dir, MODEL, ["fracture"])
    assert list(data.image_ids) == [ids[i] for i in (0, 1, 2, 3, 4, 5, 7)]
    assert list(data.y[:, 0]) == [1, 1, 0, 1, 0, 1, 1]
    assert data.x.shape == (7, 8) and data.groups[0] == "P0"
    counts = data.counts["fracture"]
    assert counts["labelled"] == 7 and counts["uncertain"] == 1
    assert counts["without_embedding"] == 1
    assert counts["per_class"] == {"no fracture": 2, "fracture": 5}


def test_several_tasks_leave_missing_labels_missing(
    db: Database, data_dir: Path, tmp_path: Path
) -> None:
    make_labelled(db, data_dir, {"fracture": [0, 1, 0, 1], "kl_grade": ["0", None, "3", "4"]})
    data = assemble_dataset(db, data_dir, MODEL, ["fracture", "kl_grade"], min_per_class=1)
    assert data.y[:, 1].tolist() == [0, MISSING, 3, 4]
    data.save(tmp_path / "d.npz")
    again = HeadDataset.load(tmp_path / "d.npz")
    assert np.array_equal(again.y, data.y) and again.tasks == data.tasks
    assert list(again.groups) == list(data.groups) and again.counts == data.counts


def test_bad_requests_are_explained(db: Database, data_dir: Path) -> None:
    make_labelled(db, data_dir, {"fracture": [0, 0, 0, 1], "implant": [1, 1, None, None]})
    with pytest.raises(DatasetError, match="'abnormal' has no usable labels"):
        assemble_dataset(db, data_dir, MODEL, ["abnormal"])
    with pytest.raises(DatasetError, match="every usable label is 'implant'"):
        assemble_dataset(db, data_dir, MODEL, ["implant"])
    with pytest.raises(DatasetError, match=r"too few labels for 3 folds \('fracture': 1\)"):
        assemble_dataset(db, data_dir, MODEL, ["fracture"], min_per_class=3)
    with pytest.raises(DatasetError, match="unknown task"):
        assemble_dataset(db, data_dir, MODEL, ["nope"])
    with pytest.raises(DatasetError, match="region task"):
        _region(db, data_dir)
    with pytest.raises(DatasetError, match="no embedding yet"):
        assemble_dataset(
            db,
            data_dir,
            SimpleNamespace(
                embedding_identity="0" * 64, sha256="1" * 64, manifest_shas=("1" * 64,)
            ),
            ["fracture"],
        )


def _region(db: Database, data_dir: Path) -> None:
    from skelex_desktop.core.db.models import Task

    with db.write() as s:
        s.add(Task(name="box", kind="region", classes=[]))
    assemble_dataset(db, data_dir, MODEL, ["box"])
