"""Task heads shipped inside a model package, so a new user sees suggestions from the start.

A package declares them in its manifest under `heads`:

    "heads": {"model_version": "<package>-heads", "embedding_sha256": <sha256 of the
              embedding graph file they were trained on>, optionally "embedding_identity":
              <the package's Manifest.embedding_identity they were trained on>,
              "training": {...},
              "tasks": {"<task>": {"file": "heads/<task>.npz", "sha256", "bytes", "kind",
                                   "classes", "body_parts": [...], "images", "metrics"}}}

and lists every head file under `files` as well, so `model verify` checks them. Their
predictions are stored as rows of the ModelVersion `<package>-heads` (version = package
version; created and activated on first use). A task covered by an active head the user trained
on the same embeddings (`versions.applies_to`) gets no bundled prediction, and the user's rows
are newer than any bundled row of an image, so `task_states` shows the user's head. Every head
file is checked against its sha256 when read; a damaged or replaced one is refused
(PackageError), nothing is half-stored. The heads are refused as well when the embedding graph
is not the one they were trained on, or, when the section records `embedding_identity`, when
the package's embedding identity (graph and preprocessing) differs from it. Calibrating the
error map changes neither.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Image, ModelVersion, Prediction, Task
from skelex_desktop.core.heads.model import HeadWeights
from skelex_desktop.core.heads.training_job import head_prediction
from skelex_desktop.core.heads.versions import EMBEDDING_MODEL, active_user_heads, set_active
from skelex_desktop.core.inference.interfaces import ModelManifest
from skelex_desktop.core.inference.package import PackageError, read_verified, sha256_bytes

HEADS_KEY = "heads"


@dataclass(frozen=True)
class BundledHead:
    """One head file a package declares."""

    task: str
    file: str
    sha256: str
    kind: str
    classes: list[str]
    body_parts: tuple[str, ...] = ()  # upper case; empty = every image

    def applies_to(self, body_part: str) -> bool:
        return not self.body_parts or body_part.strip().upper() in self.body_parts


def declared_heads(manifest: ModelManifest) -> list[BundledHead]:
    """The heads `manifest` declares (none when it has no `heads` section)."""
    section = manifest.data.get(HEADS_KEY) or {}
    heads = []
    for task, entry in sorted((section.get("tasks") or {}).items()):
        try:
            heads.append(
                BundledHead(
                    task=str(task),
                    file=str(entry["file"]),
                    sha256=str(entry["sha256"]),
                    kind=str(entry["kind"]),
                    classes=[str(c) for c in entry["classes"]],
                    body_parts=tuple(str(b).upper() for b in entry.get("body_parts", [])),
                )
            )
        except (KeyError, TypeError) as exc:
            raise PackageError(
                f"{manifest.name}: bundled head {task!r} is declared without {exc}"
            ) from exc
    return heads


def bundled_version_name(manifest: ModelManifest) -> str:
    """The ModelVersion name of a package's bundled heads, e.g. `skelex-demo-heads`."""
    section = manifest.data.get(HEADS_KEY) or {}
    return str(section.get("model_version") or f"{manifest.name}-heads")


def bundled_file_sha256(manifest: ModelManifest) -> dict[str, str]:
    """What the bundled heads' ModelVersion records: each head file's sha256 and the package's
    embedding identity."""
    shas = {head.file: head.sha256 for head in declared_heads(manifest)}
    return shas | {EMBEDDING_MODEL: manifest.embedding_identity}


def load_bundled_head(manifest: ModelManifest, head: BundledHead) -> HeadWeights:
    """The weights of one bundled head, read once and checked against the manifest's sha256
    (in `files` and in `heads`) and against the embedding graph they were trained on."""
    data = read_verified(manifest, head.file)  # PackageError when damaged or replaced
    if sha256_bytes(data) != head.sha256:
        raise PackageError(
            f"{manifest.name}: bundled head {head.file} does not match the "
            "sha256 of its heads entry (tampered); it is refused, reinstall "
            "the package"
        )
    section = manifest.data.get(HEADS_KEY) or {}
    trained_on = section.get("embedding_sha256")
    graph = manifest.graph("embedding").file
    if trained_on and manifest.files.get(graph, {}).get("sha256") != trained_on:
        raise PackageError(
            f"{manifest.name}: the bundled heads were trained on another {graph}; they are refused"
        )
    identity = section.get("embedding_identity")
    if identity and identity != manifest.embedding_identity:
        raise PackageError(
            f"{manifest.name}: the bundled heads were trained on other embeddings (embedding "
            "graph or preprocessing changed); they are refused"
        )
    weights = HeadWeights.load(io.BytesIO(data))
    spec = next((t for t in weights.tasks if t.name == head.task), None)
    if spec is None or spec.kind != head.kind or list(spec.classes) != head.classes:
        raise PackageError(
            f"{manifest.name}: {head.file} does not hold the declared "
            f"{head.kind} head for {head.task!r}"
        )
    return weights


def user_head_tasks(session: Session, manifest: ModelManifest) -> set[str]:
    """Tasks predicted by an active head the user trained that applies to `manifest`."""
    tasks: set[str] = set()
    for version in active_user_heads(session, manifest):
        tasks |= set((version.label_counts or {}) or (version.metrics or {}).get("cv", {}))
    return tasks


def predict_with_bundled_heads(
    db: Database, manifest: ModelManifest, vectors: dict[int, np.ndarray]
) -> int:
    """Store the package's bundled heads' predictions for `vectors` (image id -> embedding of
    this package) where missing, skipping tasks an active user head covers; returns how many
    predictions were added."""
    heads = declared_heads(manifest)
    if not heads or not vectors:
        return 0
    with db.read() as session:
        covered = user_head_tasks(session, manifest)
        task_ids = dict(session.execute(select(Task.name, Task.id)).all())
        ids = sorted(vectors)
        parts = dict(
            session.execute(select(Image.id, Image.body_part).where(Image.id.in_(ids))).all()
        )
    wanted = [h for h in heads if h.task not in covered and h.task in task_ids]
    if not wanted:
        return 0
    loaded = [(h, load_bundled_head(manifest, h)) for h in wanted]  # all checked first
    matrix = np.stack([vectors[i] for i in ids])
    name, version_label = bundled_version_name(manifest), manifest.version or "1"
    added = 0
    with db.write() as session:
        version = session.scalar(
            select(ModelVersion).where(
                ModelVersion.name == name, ModelVersion.version == version_label
            )
        )
        if version is None:
            version = ModelVersion(
                name=name,
                version=version_label,
                file_sha256=bundled_file_sha256(manifest),
                metrics=_metrics(manifest),
                label_counts={},
            )
            session.add(version)
            session.flush()
            set_active(session, version)
        done = set(
            session.execute(
                select(Prediction.image_id, Prediction.task_id).where(
                    Prediction.model_version_id == version.id, Prediction.image_id.in_(ids)
                )
            ).all()
        )
        for head, weights in loaded:
            probabilities = weights.probabilities(matrix)[head.task]
            task_id = task_ids[head.task]
            temperature = weights.temperatures.get(head.task, 1.0)
            for row, image_id in enumerate(ids):
                if (image_id, task_id) in done or not head.applies_to(parts.get(image_id, "")):
                    continue
                prediction = head_prediction(
                    image_id,
                    version.id,
                    task_id,
                    head.kind,
                    head.classes,
                    probabilities[row],
                    name,
                    version_label,
                    temperature,
                )
                prediction.details = {**(prediction.details or {}), "bundled": True}
                session.add(prediction)
                added += 1
    return added


def _metrics(manifest: ModelManifest) -> dict[str, Any]:
    """The cross-validation metrics the manifest records for each bundled head."""
    section = manifest.data.get(HEADS_KEY) or {}
    return {
        "cv": {
            task: entry.get("metrics", {}) for task, entry in (section.get("tasks") or {}).items()
        },
        "training": section.get("training", {}),
        "embedding_model": f"{manifest.name} {manifest.version}",
        "bundled": True,
    }
