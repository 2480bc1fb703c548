"""Analysing an imported image: error map, hotspots and the zero-shot "abnormal" prediction.

The runtime (`ErrorMapService`) computes the map (from its cache when it can); this module
records the result as a `Prediction` of the package's `ModelVersion`, once per image and model
version, and updates the worklist columns (AI score, status new -> analysed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Image, Prediction, Task
from skelex_desktop.core.domain import ImageStatus
from skelex_desktop.core.inference.errormap import FOREGROUND_VERSION
from skelex_desktop.core.inference.interfaces import AnalysisResult, AnalysisService
from skelex_desktop.core.inference.reliability import carried_measures
from skelex_desktop.core.review.decisions import ImageDetails, ensure_model_version, image_details

ZERO_SHOT_METHOD = "zero-shot error map"
ZERO_SHOT_TASK = "abnormal"


@dataclass
class ImageAnalysis:
    """An analysed image: where it is, the runtime's result and the stored prediction."""

    details: ImageDetails
    result: AnalysisResult  # an ErrorMapResult of the service
    prediction_id: int
    overlay: object = None  # display data a UI may attach (prepared off its GUI thread)


def analyse_image(db: Database, service: AnalysisService, image_id: int) -> ImageAnalysis:
    """Analyse one image with `service` (an ErrorMapService) and record the prediction."""
    with db.read() as session:
        details = image_details(session, image_id)
    result = service.analyse_file(
        details.file_path, details.frame, content_hash=details.content_hash
    )
    manifest = service.runtime.manifest
    prediction_id = record_zero_shot(
        db,
        image_id,
        model=(manifest.name, manifest.version or manifest.sha256[:12], manifest.sha256),
        score=float(result.score),
        threshold=result.threshold,
        hotspots=[h.to_json() for h in result.hotspots],
        error_map_path=str(result.extra.get("cache_path", "")),
        calibration_auroc=(carried_measures(manifest.errormap.get("calibration")) or {}).get(
            "image_auroc"
        ),
    )
    return ImageAnalysis(details=details, result=result, prediction_id=prediction_id)


def record_zero_shot(
    db: Database,
    image_id: int,
    model: tuple[str, str, str],
    score: float,
    threshold: float | None,
    hotspots: list[dict[str, Any]],
    error_map_path: str = "",
    calibration_auroc: float | None = None,
) -> int:
    """Store (once per image and model package state) the zero-shot abnormal prediction.

    A package recalibrated in place keeps its name and version but not its sha256, and its
    maps, hotspots and abnormal call change; so do they when the anatomy mask changes
    (`FOREGROUND_VERSION`). Then a new row is added (the newest prediction is the one shown;
    the earlier rows stay for provenance). Rows stored before both were recorded in `details`
    count as another state. `calibration_auroc`: the map's image AUROC on its calibration set
    (abnormal vs normal), which decides whether Enter accepts the call (`TaskState`).
    """
    name, version, package_sha = model
    with db.write() as session:
        model_version = ensure_model_version(session, name, version, {"package": package_sha})
        task_id = session.scalar(select(Task.id).where(Task.name == ZERO_SHOT_TASK))
        if task_id is None:
            raise ValueError(f"the label schema has no {ZERO_SHOT_TASK!r} task")
        existing = session.scalars(
            select(Prediction)
            .where(
                Prediction.image_id == image_id,
                Prediction.model_version_id == model_version.id,
                Prediction.task_id == task_id,
            )
            .order_by(Prediction.id.desc())
        ).first()
        state = {"package": package_sha, "foreground": FOREGROUND_VERSION}
        if existing is not None and all(
            (existing.details or {}).get(k) == v for k, v in state.items()
        ):
            if error_map_path and not existing.error_map_path:  # stored before maps were named
                existing.error_map_path = error_map_path
            return existing.id
        prediction = Prediction(
            image_id=image_id,
            model_version_id=model_version.id,
            task_id=task_id,
            probabilities={},
            score=score,
            error_map_path=error_map_path,
            details={
                "method": ZERO_SHOT_METHOD,
                **state,
                "calibration_auroc": calibration_auroc,
                "threshold": threshold,
                "hotspots": hotspots,
            },
        )
        session.add(prediction)
        image = session.get(Image, image_id)
        if image is not None:
            image.ai_score = score
            if image.status == ImageStatus.NEW:
                image.status = ImageStatus.ANALYSED.value
        session.flush()
        return prediction.id
