"""Select the images, current labels, regions and predictions that an export carries."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from skelex_desktop.core.db.models import (
    Image,
    Label,
    ModelVersion,
    Patient,
    Prediction,
    Region,
    Series,
    Study,
    Task,
)
from skelex_desktop.core.export.options import STATUS_ANY, ExportError, Selection
from skelex_desktop.core.ingest.image_paths import resolve_image_path, session_image_root
from skelex_desktop.core.review.labels import is_current, prediction_value
from skelex_desktop.core.review.measurements import MeasurementView, list_measurements
from skelex_desktop.core.team.adjudication import current_finals


@dataclass(frozen=True)
class TaskInfo:
    """A task of the schema, detached from the session."""

    id: int
    name: str
    title: str
    kind: str
    classes: tuple[str, ...]
    order: int
    description: str
    scope: str = "image"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "kind": self.kind,
            "classes": list(self.classes),
            "order": self.order,
            "description": self.description,
            "scope": self.scope,
        }


@dataclass(frozen=True)
class AiSuggestion:
    """The newest suggestion of a task for an image (an active model's first), for --with-ai."""

    value: Any
    probability: float | None
    model: str  # "name:version"


@dataclass(frozen=True)
class ModelInfo:
    """A model version referenced by the exported labels or maps."""

    id: int
    name: str
    version: str
    file_sha256: dict[str, str]

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "file_sha256": self.file_sha256}


@dataclass(frozen=True)
class LabelInfo:
    """The current decision of one task for one image."""

    value: Any
    uncertain: bool
    source: str
    reader: str
    model_version_id: int | None
    prediction_value: Any = None
    prediction_score: float | None = None


@dataclass(frozen=True)
class RegionInfo:
    """A box region in full-resolution pixels."""

    task: str
    x0: float
    y0: float
    x1: float
    y1: float
    value: Any
    reader: str


@dataclass
class ExportItem:
    """One image with everything the writers need; identities stay here, never in outputs."""

    image_id: int
    patient_pk: int
    patient_id: str
    patient_name: str
    birth_date: date | None
    sex: str
    study_uid: str
    study_date: date | None
    accession: str
    series_uid: str
    sop_uid: str
    frame: int
    file_path: str
    rows: int
    cols: int
    modality: str
    body_part: str
    view: str
    laterality: str
    labels: dict[str, LabelInfo] = field(default_factory=dict)
    regions: list[RegionInfo] = field(default_factory=list)
    error_maps: list[tuple[str, int]] = field(default_factory=list)  # (path, model version id)
    measurements: list[MeasurementView] = field(default_factory=list)
    ai: dict[str, AiSuggestion] = field(default_factory=dict)
    reads: dict[str, dict[str, LabelInfo]] = field(default_factory=dict)  # task -> reader -> read

    @property
    def readers(self) -> list[str]:
        names = [lab.reader for lab in self.labels.values()] + [r.reader for r in self.regions]
        names += [m.reader for m in self.measurements]
        names += [reader for by_reader in self.reads.values() for reader in by_reader]
        return sorted({n for n in names if n})

    @property
    def model_version_ids(self) -> list[int]:
        return sorted(
            {lab.model_version_id for lab in self.labels.values() if lab.model_version_id}
        )


@dataclass
class SelectionResult:
    tasks: list[TaskInfo]
    items: list[ExportItem]
    models: dict[int, ModelInfo]


def _tasks(session: Session, names: tuple[str, ...]) -> list[TaskInfo]:
    rows = list(session.scalars(select(Task).order_by(Task.order, Task.id)))
    if names:
        known = {t.name for t in rows}
        missing = [n for n in names if n not in known]
        if missing:
            raise ExportError(f"unknown task {missing[0]!r}; known: {', '.join(sorted(known))}")
        rows = [t for t in rows if t.name in names]
    return [
        TaskInfo(
            t.id,
            t.name,
            t.title,
            t.kind,
            tuple(str(c) for c in t.classes),
            t.order,
            t.description,
            t.scope,
        )
        for t in rows
    ]


def _model_ids(session: Session, spec: str) -> list[int]:
    name, _, version = spec.partition(":")
    query = select(ModelVersion.id)
    if version:
        query = query.where(ModelVersion.name == name, ModelVersion.version == version)
    else:
        query = query.where((ModelVersion.name == spec) | (ModelVersion.version == spec))
    ids = list(session.scalars(query))
    if not ids:
        raise ExportError(f"no model version matches {spec!r}")
    return ids


def _image_rows(
    session: Session, sel: Selection, model_ids: list[int] | None
) -> list[Row[Image, Series, Study, Patient]]:
    query = (
        select(Image, Series, Study, Patient)
        .join(Series, Series.id == Image.series_id)
        .join(Study, Study.id == Series.study_id)
        .join(Patient, Patient.id == Study.patient_id)
        .order_by(Patient.id, Study.id, Series.id, Image.id)
    )
    if sel.status != STATUS_ANY:
        query = query.where(Image.status == sel.status)
    if sel.date_from:
        query = query.where(Study.study_date >= sel.date_from)
    if sel.date_to:
        query = query.where(Study.study_date <= sel.date_to)
    if model_ids is not None:
        with_prediction = select(Prediction.image_id).where(
            Prediction.model_version_id.in_(model_ids)
        )
        query = query.where(Image.id.in_(with_prediction))
    return list(session.execute(query))


def select_items(
    session: Session,
    sel: Selection,
    with_ai: bool = False,
    final_labels: bool = True,
    with_reads: bool = False,
) -> SelectionResult:
    """Images passing every filter that hold at least one current label or region of the tasks;
    with `with_ai`, each also carries the AI's newest suggestion per task. With `final_labels`
    (the default) an adjudicated final label (team mode) takes the place of the readers'
    decisions of its image and task (source "final", reader the adjudicator); not when the
    selection asks for one reader's labels. With `with_reads`, each item also carries every
    reader's own current decision per task (`ExportItem.reads`), beside the final label."""
    tasks = _tasks(session, sel.tasks)
    by_id = {t.id: t for t in tasks}
    model_ids = _model_ids(session, sel.model_version) if sel.model_version else None
    rows = _image_rows(session, sel, model_ids)
    image_ids = [image.id for image, *_ in rows]
    labels: dict[int, dict[str, LabelInfo]] = defaultdict(dict)
    reads: dict[int, dict[str, dict[str, LabelInfo]]] = defaultdict(dict)
    regions: dict[int, list[RegionInfo]] = defaultdict(list)
    measurements: dict[int, list[MeasurementView]] = defaultdict(list)
    maps: dict[int, list[tuple[str, int]]] = defaultdict(list)
    used_models: set[int] = set()
    for chunk in _chunks(image_ids):
        label_query = (
            select(Label, Prediction)
            .outerjoin(Prediction, Prediction.id == Label.prediction_id)
            .where(Label.image_id.in_(chunk), Label.task_id.in_(list(by_id)), is_current())
        )
        if sel.reader:
            label_query = label_query.where(Label.reader == sel.reader)
        for label, prediction in session.execute(label_query):
            task = by_id[label.task_id]
            mv = prediction.model_version_id if prediction is not None else None
            info = LabelInfo(
                value=label.value,
                uncertain=label.uncertain,
                source=label.source,
                reader=label.reader,
                model_version_id=mv,
                prediction_value=_predicted_value(task, prediction),
                prediction_score=prediction.score if prediction is not None else None,
            )
            labels[label.image_id][task.name] = info
            if with_reads and label.source == "human" and task.kind != "region":
                reads[label.image_id].setdefault(task.name, {})[label.reader] = info
            if mv:
                used_models.add(mv)
        if final_labels and not sel.reader:
            for (image_id, task_id), final in current_finals(session, chunk, list(by_id)).items():
                labels[image_id][by_id[task_id].name] = LabelInfo(
                    value=final.value,
                    uncertain=final.uncertain,
                    source="final",
                    reader=final.adjudicator,
                    model_version_id=None,
                )
        region_query = select(Region).where(
            Region.image_id.in_(chunk), Region.task_id.in_(list(by_id)), Region.deleted_at.is_(None)
        )
        if sel.reader:
            region_query = region_query.where(Region.reader == sel.reader)
        for region in session.scalars(region_query.order_by(Region.id)):
            g = region.geometry or {}
            if g.get("type") != "box":
                continue
            regions[region.image_id].append(
                RegionInfo(
                    by_id[region.task_id].name,
                    float(g["x0"]),
                    float(g["y0"]),
                    float(g["x1"]),
                    float(g["y1"]),
                    region.value,
                    region.reader,
                )
            )
        map_query = (
            select(Prediction.image_id, Prediction.error_map_path, Prediction.model_version_id)
            .where(Prediction.image_id.in_(chunk), Prediction.error_map_path != "")
            .order_by(Prediction.id.desc())
        )
        if model_ids is not None:
            map_query = map_query.where(Prediction.model_version_id.in_(model_ids))
        for image_id, path, mv in session.execute(map_query):
            if (path, mv) not in maps[image_id]:
                maps[image_id].append((path, mv))
        for measurement in list_measurements(session, image_ids=chunk):
            if not sel.reader or measurement.reader == sel.reader:
                measurements[measurement.image_id].append(measurement)
    items: list[ExportItem] = []
    root = session_image_root(session)  # the file of an image stored relative to the folder
    for image, series, study, patient in rows:
        if not labels.get(image.id) and not regions.get(image.id):
            continue
        item = _item(
            image, series, study, patient, labels[image.id], regions[image.id], maps[image.id]
        )
        item.file_path = str(resolve_image_path(image.file_path, root, must_exist=False))
        item.measurements = measurements[image.id]
        item.reads = reads.get(image.id, {})
        items.append(item)
    if with_ai:
        _attach_ai(session, items, tasks)
        used_models.update(mv for _, mv in maps[image.id])
    models = {
        m.id: ModelInfo(m.id, m.name, m.version, dict(m.file_sha256 or {}))
        for m in session.scalars(select(ModelVersion).where(ModelVersion.id.in_(used_models)))
    }
    return SelectionResult(tasks=tasks, items=items, models=models)


def _item(
    image: Image,
    series: Series,
    study: Study,
    patient: Patient,
    labels: dict[str, LabelInfo],
    regions: list[RegionInfo],
    maps: list[tuple[str, int]],
) -> ExportItem:
    return ExportItem(
        image_id=image.id,
        patient_pk=patient.id,
        patient_id=patient.patient_id,
        patient_name=patient.name,
        birth_date=patient.birth_date,
        sex=patient.sex,
        study_uid=study.study_instance_uid,
        study_date=study.study_date,
        accession=study.accession_number,
        series_uid=series.series_instance_uid,
        sop_uid=image.sop_instance_uid,
        frame=image.frame,
        file_path=image.file_path,
        rows=image.rows,
        cols=image.cols,
        modality=image.modality or series.modality,
        body_part=image.body_part,
        view=image.view,
        laterality=image.laterality,
        labels=dict(labels),
        regions=list(regions),
        error_maps=list(maps),
    )


def _attach_ai(session: Session, items: list[ExportItem], tasks: list[TaskInfo]) -> None:
    """Each item's newest suggestion per task, active model versions first (as the review
    panel shows them), with its value as the reader would have seen it."""
    by_image = {item.image_id: item for item in items}
    task_rows = {t.id: session.get(Task, t.id) for t in tasks}
    for chunk in _chunks(list(by_image)):
        rows = session.execute(
            select(Prediction, ModelVersion.name, ModelVersion.version)
            .join(ModelVersion, Prediction.model_version_id == ModelVersion.id)
            .where(Prediction.image_id.in_(chunk), Prediction.task_id.in_(list(task_rows)))
            .order_by(ModelVersion.active, Prediction.created_at, Prediction.id)
        )
        for prediction, name, version in rows:  # later rows (active, newest) win
            task = task_rows[prediction.task_id]
            if task is None:
                continue
            value = prediction_value(task, prediction)
            probs = prediction.probabilities or {}
            thresholded = "threshold" in (prediction.details or {})
            key = str(task.classes[1]) if task.kind == "binary" else str(value)
            p = None if thresholded else probs.get(key)
            by_image[prediction.image_id].ai[task.name] = AiSuggestion(
                value, None if p is None else float(p), f"{name}:{version}"
            )


def _predicted_value(task: TaskInfo, prediction: Prediction | None) -> Any:
    """The class a prediction proposed (binary: 1 when p >= 0.5), or None."""
    if prediction is None:
        return None
    probs = prediction.probabilities or {}
    if task.kind == "binary":
        p = probs.get(task.classes[1], prediction.score) if len(task.classes) == 2 else None
        return None if p is None else int(float(p) >= 0.5)
    if not probs:
        return None
    return max(probs, key=lambda k: float(probs[k]))


def _chunks(values: list[int], size: int = 500) -> list[list[int]]:
    return [values[i : i + size] for i in range(0, len(values), size)]
