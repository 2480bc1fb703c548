"""Predictions of the active task heads for newly embedded images.

Training stores predictions for every image embedded at that time; images analysed later get
theirs here, from each active head that applies to the package (`versions.applies_to`: trained
on embeddings of the same embedding identity). A head file whose sha256 no longer matches its
ModelVersion is refused, never half-used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sqlalchemy import select

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import ModelVersion, Prediction, Task
from skelex_desktop.core.heads.model import HeadWeights
from skelex_desktop.core.heads.training_job import TrainingError, head_prediction
from skelex_desktop.core.heads.versions import HEAD_FILE, active_user_heads
from skelex_desktop.core.inference.interfaces import ModelManifest
from skelex_desktop.core.inference.package import sha256_bytes


def head_folder(data_dir: Path, name: str, version: str) -> Path:
    return Path(data_dir) / "heads" / f"{name}-{version}"


def load_verified_head(data_dir: Path, version: ModelVersion) -> HeadWeights:
    """The weights of a head version, after checking their sha256 against the database."""
    path = head_folder(data_dir, version.name, version.version) / HEAD_FILE
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TrainingError(f"head {version.name} {version.version}: cannot read {path}") from exc
    if sha256_bytes(data) != version.file_sha256.get(HEAD_FILE):
        raise TrainingError(
            f"head {version.name} {version.version}: {path.name} does not match its recorded "
            "sha256 (modified or damaged); retrain or activate another version"
        )
    return HeadWeights.load(path)


def predict_with_active_heads(
    db: Database, data_dir: Path, vectors: dict[int, np.ndarray], manifest: ModelManifest
) -> int:
    """Store the predictions of the active heads that apply to `manifest` for `vectors` (image
    id -> embedding by that package) where missing; returns how many predictions were added."""
    if not vectors:
        return 0
    with db.read() as session:
        heads = active_user_heads(session, manifest)
        task_ids = dict(session.execute(select(Task.name, Task.id)).all())
    added = 0
    ids = sorted(vectors)
    for version in heads:
        weights = load_verified_head(data_dir, version)
        probabilities = weights.probabilities(np.stack([vectors[i] for i in ids]))
        with db.write() as session:
            done = set(
                session.execute(
                    select(Prediction.image_id, Prediction.task_id).where(
                        Prediction.model_version_id == version.id,
                        Prediction.image_id.in_(ids),
                    )
                ).all()
            )
            for task in weights.tasks:
                task_id = task_ids.get(task.name)
                if task_id is None:
                    continue
                for row, image_id in enumerate(ids):
                    if (image_id, task_id) in done:
                        continue
                    session.add(
                        head_prediction(
                            image_id,
                            version.id,
                            task_id,
                            task.kind,
                            task.classes,
                            probabilities[task.name][row],
                            version.name,
                            version.version,
                            weights.temperatures.get(task.name, 1.0),
                        )
                    )
                    added += 1
    return added
