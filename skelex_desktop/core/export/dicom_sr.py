"""Comprehensive 3D SR (TID 1500 Measurement Report) with an image's findings.

One report per image: the readers' current decisions as qualitative evaluations (regression
tasks as measurements), the suggestions of each model version the decisions were made against
(with Algorithm Identification), every box region as an image region (TID 1410), and every
length and angle as a measurement (TID 1410 with its line(s) as the referenced region). The
observer context names the reader (person) and, when a model was involved, the model (device).
The report is built from its own copy of the source (`dicom_source.derivation_source`) and
declares the private coding scheme `99SKELEX` in its Coding Scheme Identification Sequence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import highdicom as hd
import numpy as np
from highdicom.sr import (
    AlgorithmIdentification,
    CodedConcept,
    Comprehensive3DSR,
    DeviceObserverIdentifyingAttributes,
    GraphicTypeValues,
    ImageRegion,
    Measurement,
    MeasurementReport,
    MeasurementsAndQualitativeEvaluations,
    ObservationContext,
    ObserverContext,
    PersonObserverIdentifyingAttributes,
    PlanarROIMeasurementsAndQualitativeEvaluations,
    QualitativeEvaluation,
    SourceImageForMeasurementGroup,
    SourceImageForRegion,
    TrackingIdentifier,
)
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from skelex_desktop.core.export.dicom_common import (
    MANUFACTURER,
    MODEL_NAME,
    NO_UNITS,
    SOFTWARE_VERSION,
    UNCERTAIN,
    class_concept,
    coding_schemes,
    model_uid,
    task_concept,
)
from skelex_desktop.core.export.dicom_source import derivation_source
from skelex_desktop.core.export.selection import ExportItem, ModelInfo, TaskInfo

RADIOGRAPHY = CodedConcept("363680008", "SCT", "Radiographic imaging procedure")
MEASURED = {"length": CodedConcept("410668003", "SCT", "Length"), "angle": codes.SCT.Angle}
UNITS = {
    "mm": CodedConcept("mm", "UCUM", "millimeter"),
    "px": CodedConcept("{pixels}", "UCUM", "pixels"),  # an uncalibrated length
    "deg": CodedConcept("deg", "UCUM", "degree"),
}


def _measurement_groups(
    source: Dataset, item: ExportItem
) -> list[PlanarROIMeasurementsAndQualitativeEvaluations]:
    """Each length (its line, a POLYLINE) and angle (the end points of its two lines, a
    MULTIPOINT) with its value and unit."""
    groups = []
    for n, m in enumerate(item.measurements, start=1):
        roi = ImageRegion(
            graphic_type=(
                GraphicTypeValues.POLYLINE if m.kind == "length" else GraphicTypeValues.MULTIPOINT
            ),
            graphic_data=np.asarray(m.points, dtype=float),
            source_image=SourceImageForRegion.from_source_image(source),
        )
        groups.append(
            PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=TrackingIdentifier(uid=hd.UID(), identifier=f"{m.kind} {n}"),
                referenced_region=roi,
                measurements=[Measurement(MEASURED[m.kind], float(m.value), UNITS[m.unit])],
            )
        )
    return groups


def _evaluations(
    tasks: list[TaskInfo], item: ExportItem, predicted: bool, model_id: int | None = None
) -> tuple[list[QualitativeEvaluation], list[Measurement]]:
    qualitative: list[QualitativeEvaluation] = []
    measurements: list[Measurement] = []
    for task in tasks:
        label = item.labels.get(task.name)
        if label is None or task.kind == "region":
            continue
        if predicted:
            if label.model_version_id != model_id or label.prediction_value is None:
                continue
            value, uncertain = label.prediction_value, False
        else:
            value, uncertain = label.value, label.uncertain
        if task.kind == "regression":
            if not uncertain and value is not None:
                measurements.append(Measurement(task_concept(task), float(value), NO_UNITS))
            continue
        if uncertain or value is not None:
            answer = class_concept(task, UNCERTAIN if uncertain else value)
            qualitative.append(QualitativeEvaluation(task_concept(task), answer))
    return qualitative, measurements


def _region_groups(
    source: Dataset, item: ExportItem, tasks: list[TaskInfo]
) -> list[PlanarROIMeasurementsAndQualitativeEvaluations]:
    by_name = {t.name: t for t in tasks}
    groups = []
    for n, region in enumerate(item.regions, start=1):
        task = by_name[region.task]
        corners = [
            (region.x0, region.y0),
            (region.x1, region.y0),
            (region.x1, region.y1),
            (region.x0, region.y1),
            (region.x0, region.y0),
        ]
        roi = ImageRegion(
            graphic_type=GraphicTypeValues.POLYLINE,
            graphic_data=np.asarray(corners, dtype=float),
            source_image=SourceImageForRegion.from_source_image(source),
        )
        evaluations = []
        if region.value is not None and task.kind != "regression":
            evaluations.append(
                QualitativeEvaluation(task_concept(task), class_concept(task, region.value))
            )
        groups.append(
            PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=TrackingIdentifier(uid=hd.UID(), identifier=f"region {n}"),
                referenced_region=roi,
                finding_type=task_concept(task),
                qualitative_evaluations=evaluations or None,
            )
        )
    return groups


def build_sr(
    source: Dataset,
    item: ExportItem,
    tasks: list[TaskInfo],
    models: dict[int, ModelInfo],
    reader_name: Callable[[str], str],
    series_uid: str,
    instance_number: int,
) -> Comprehensive3DSR:
    """The TID 1500 report of `item`, referencing the (already de-identified) `source`."""
    source = derivation_source(source)
    evidence = SourceImageForMeasurementGroup.from_source_image(source)
    groups: list[
        MeasurementsAndQualitativeEvaluations | PlanarROIMeasurementsAndQualitativeEvaluations
    ] = []
    qualitative, measurements = _evaluations(tasks, item, predicted=False)
    if qualitative or measurements:
        groups.append(
            MeasurementsAndQualitativeEvaluations(
                tracking_identifier=TrackingIdentifier(uid=hd.UID(), identifier="reader findings"),
                qualitative_evaluations=qualitative or None,
                measurements=measurements or None,
                source_images=[evidence],
            )
        )
    for model_id in item.model_version_ids:
        model = models.get(model_id)
        qualitative, measurements = _evaluations(tasks, item, predicted=True, model_id=model_id)
        if model is None or not (qualitative or measurements):
            continue
        groups.append(
            MeasurementsAndQualitativeEvaluations(
                tracking_identifier=TrackingIdentifier(
                    uid=hd.UID(), identifier=f"suggestions of {model.label}"
                ),
                qualitative_evaluations=qualitative or None,
                measurements=measurements or None,
                algorithm_id=AlgorithmIdentification(name=model.name, version=model.version),
                source_images=[evidence],
            )
        )
    groups += _region_groups(source, item, tasks)
    groups += _measurement_groups(source, item)
    readers = Counter(lab.reader for lab in item.labels.values() if lab.reader)
    readers.update(r.reader for r in item.regions if r.reader)
    readers.update(m.reader for m in item.measurements if m.reader)
    reader = reader_name(readers.most_common(1)[0][0]) if readers else "unknown"
    if "^" not in reader:
        reader += "^"  # a single-component person name (family name only)
    person = ObserverContext(
        observer_type=codes.DCM.Person,
        observer_identifying_attributes=PersonObserverIdentifyingAttributes(name=reader),
    )
    device = None
    model = next((models[m] for m in item.model_version_ids if m in models), None)
    if model is not None:
        device = ObserverContext(
            observer_type=codes.DCM.Device,
            observer_identifying_attributes=DeviceObserverIdentifyingAttributes(
                uid=model_uid(model),
                name=model.name,
                model_name=model.version,
                manufacturer_name=MANUFACTURER,
            ),
        )
    report = MeasurementReport(
        observation_context=ObservationContext(
            observer_person_context=person, observer_device_context=device
        ),
        procedure_reported=RADIOGRAPHY,
        imaging_measurements=groups,
        title=codes.DCM.ImagingMeasurementReport,
    )
    return Comprehensive3DSR(
        evidence=[source],
        content=report,
        series_instance_uid=series_uid,
        series_number=9001,
        sop_instance_uid=hd.UID(),
        instance_number=instance_number,
        manufacturer=MANUFACTURER,
        manufacturer_model_name=MODEL_NAME,
        software_versions=SOFTWARE_VERSION,
        series_description="SKELEX findings",
        is_complete=True,
        is_final=False,
        coding_schemes=coding_schemes(),
    )
