"""Training sets for task heads: (embedding, label, patient) from current human labels.

Only current, human, certain labels count; uncertain ones are excluded and counted. An image
needs a cached embedding of the chosen model package (`skelex-desktop analyze` makes them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Image, Label, Patient, Series, Study, Task
from skelex_desktop.core.inference.embeddings import ImageRef, cached_embeddings
from skelex_desktop.core.inference.interfaces import ModelManifest
from skelex_desktop.core.ingest.image_paths import resolve_image_path
from skelex_desktop.core.review.labels import is_current

TRAINABLE_KINDS = ("binary", "multiclass", "ordinal")
MISSING = -1


class DatasetError(ValueError):
    """No usable training set for the request; the message says what is missing."""


@dataclass(frozen=True)
class TaskSpec:
    """One task a head predicts."""

    name: str
    kind: str
    classes: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "classes": list(self.classes)}


@dataclass
class HeadDataset:
    """X [N, D] embeddings, Y [N, T] class indices (MISSING where unlabelled), patient groups."""

    tasks: list[TaskSpec]
    x: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    image_ids: np.ndarray
    counts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        """An npz the training child reads without pickles."""
        np.savez(
            path,
            x=self.x.astype(np.float32),
            y=self.y.astype(np.int64),
            groups=self.groups.astype(str),
            image_ids=self.image_ids.astype(np.int64),
            meta=np.array(
                json.dumps({"tasks": [t.to_json() for t in self.tasks], "counts": self.counts})
            ),
        )

    @classmethod
    def load(cls, path: Path) -> HeadDataset:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return cls(
                tasks=[TaskSpec(**t) for t in meta["tasks"]],
                x=data["x"],
                y=data["y"],
                groups=data["groups"],
                image_ids=data["image_ids"],
                counts=meta["counts"],
            )


def task_specs(db: Database, names: list[str]) -> list[TaskSpec]:
    """The named tasks, checked to be trainable."""
    if not names:
        raise DatasetError("name at least one task to train")
    with db.read() as session:
        found = {t.name: t for t in session.scalars(select(Task).where(Task.name.in_(names)))}
    specs = []
    for name in names:
        task = found.get(name)
        if task is None:
            raise DatasetError(f"unknown task {name!r}")
        if task.kind not in TRAINABLE_KINDS:
            raise DatasetError(
                f"task {name!r} is a {task.kind} task; heads predict "
                f"{', '.join(TRAINABLE_KINDS)} tasks"
            )
        specs.append(TaskSpec(task.name, task.kind, [str(c) for c in task.classes]))
    return specs


def class_index(spec: TaskSpec, value: Any) -> int | None:
    """The class index of a stored label value (None when it names no class)."""
    if spec.kind == "binary":
        return int(value) if value in (0, 1) else None
    text = str(value)
    return spec.classes.index(text) if text in spec.classes else None


@dataclass(frozen=True)
class HumanLabel:
    """A current human label: the image, the task, the class index (None when uncertain or
    naming no class) and the patient."""

    image: ImageRef
    task: str
    index: int | None
    patient: str


def human_labels(db: Database, specs: list[TaskSpec]) -> list[HumanLabel]:
    """Every current human label for the tasks of `specs`, in image order."""
    by_name = {s.name: s for s in specs}
    query = (
        select(
            Label.image_id,
            Task.name,
            Label.value,
            Label.uncertain,
            Image.file_path,
            Image.frame,
            Image.content_hash,
            Patient.patient_id,
        )
        .join(Task, Task.id == Label.task_id)
        .join(Image, Image.id == Label.image_id)
        .join(Series, Series.id == Image.series_id)
        .join(Study, Study.id == Series.study_id)
        .join(Patient, Patient.id == Study.patient_id)
        .where(is_current(), Label.source == "human", Task.name.in_(list(by_name)))
        .order_by(Label.image_id)
    )
    with db.read() as session:
        rows = session.execute(query).all()
    root = db.image_root
    return [
        HumanLabel(
            image=ImageRef(
                image_id, resolve_image_path(path, root, False), int(frame), content_hash
            ),
            task=task,
            index=None if uncertain else class_index(by_name[task], value),
            patient=str(patient),
        )
        for image_id, task, value, uncertain, path, frame, content_hash, patient in rows
    ]


def assemble_dataset(
    db: Database,
    data_dir: Path,
    manifest: ModelManifest,
    task_names: list[str],
    min_per_class: int = 2,
) -> HeadDataset:
    """Embeddings (cached, by the package `manifest`) and labels of every image with a certain
    human label for any named task.

    Raises DatasetError when a task has no usable labels, only one class, or a class with
    fewer than `min_per_class` labels (the number of folds when cross-validating).
    """
    specs = task_specs(db, task_names)
    column = {s.name: i for i, s in enumerate(specs)}
    counts: dict[str, dict[str, Any]] = {
        s.name: {
            "labelled": 0,
            "uncertain": 0,
            "without_embedding": 0,
            "per_class": dict.fromkeys(s.classes, 0),
        }
        for s in specs
    }
    refs: dict[int, ImageRef] = {}
    patients: dict[int, str] = {}
    labels: dict[int, dict[str, int]] = {}
    for label in human_labels(db, specs):
        if label.index is None:
            counts[label.task]["uncertain"] += 1
            continue
        refs[label.image.image_id] = label.image
        patients[label.image.image_id] = label.patient
        labels.setdefault(label.image.image_id, {})[label.task] = label.index
    vectors = cached_embeddings(data_dir, list(refs.values()), manifest)
    ids = [i for i in sorted(labels) if i in vectors]
    for image_id, by_task in labels.items():
        for task, index in by_task.items():
            if image_id in vectors:
                counts[task]["labelled"] += 1
                counts[task]["per_class"][specs[column[task]].classes[index]] += 1
            else:
                counts[task]["without_embedding"] += 1
    for spec in specs:
        _check_counts(spec, counts[spec.name], min_per_class)
    y = np.full((len(ids), len(specs)), MISSING, np.int64)
    for row, image_id in enumerate(ids):
        for task, index in labels[image_id].items():
            y[row, column[task]] = index
    return HeadDataset(
        tasks=specs,
        x=np.stack([vectors[i] for i in ids]).astype(np.float32),
        y=y,
        groups=np.array([patients[i] for i in ids], dtype=str),
        image_ids=np.array(ids, np.int64),
        counts=counts,
    )


def _check_counts(spec: TaskSpec, count: dict[str, Any], min_per_class: int) -> None:
    hint = (
        f"; {count['without_embedding']} labelled image(s) have no embedding yet "
        "(run 'skelex-desktop analyze --all')"
        if count["without_embedding"]
        else ""
    )
    if count["labelled"] == 0:
        raise DatasetError(f"task {spec.name!r} has no usable labels{hint}")
    present = {c: n for c, n in count["per_class"].items() if n}
    if len(present) < 2:
        (only,) = present
        raise DatasetError(
            f"task {spec.name!r}: every usable label is {only!r}; a head needs "
            f"at least two classes{hint}"
        )
    few = {c: n for c, n in present.items() if n < min_per_class}
    if few:
        listed = ", ".join(f"{c!r}: {n}" for c, n in few.items())
        raise DatasetError(
            f"task {spec.name!r}: too few labels for {min_per_class} folds "
            f"({listed}); label at least {min_per_class} per class{hint}"
        )
