"""The one analysis pipeline: what the window's background loader, `analyze` and the refresh
after training or activation run for an image, and nothing else does (`bench/viewer.py` measures
it through the window; the error-map and localisation benches measure the runtime on raw pixels
by design).

For each image: error map and hotspots (cached by the runtime) -> the zero-shot "abnormal"
prediction -> its embedding (cached) -> the bundled heads' and the active user heads'
whole-image predictions -> the region-guided predictions of the user heads (crops around the
map's top hotspots). Images are taken in chunks, so a long run keeps its memory flat, shows
progress per image and a cancel keeps every finished chunk. An image that cannot be read or
predicted is reported in `failed` and the others go on; every step reads its cache or skips
what is stored, so a second run computes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skelex_desktop.core.analysis.image_analysis import ImageAnalysis, analyse_image
from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import ModelVersion
from skelex_desktop.core.heads.bundled import predict_with_bundled_heads
from skelex_desktop.core.heads.predict import predict_with_active_heads
from skelex_desktop.core.heads.region_guided import region_guided_predictions
from skelex_desktop.core.heads.training_job import TrainingError
from skelex_desktop.core.heads.versions import adopt_legacy_heads, head_package
from skelex_desktop.core.inference.embeddings import cached_embeddings, embed_images, image_refs
from skelex_desktop.core.inference.interfaces import AnalysisService, ModelManifest, ServiceSettings
from skelex_desktop.core.inference.service import ErrorMapService
from skelex_desktop.core.ingest.limits import IngestError
from skelex_desktop.core.progress import Progress, check

CHUNK = 16
# what makes one image fail without stopping the others: unreadable pixels, a damaged cache
# or head file, an analysis that does not fit its image
IMAGE_ERRORS = (IngestError, OSError, ValueError, TrainingError)


@dataclass
class AnalysisSummary:
    """What a pipeline run did: images analysed, embeddings computed / reused, predictions
    added by the heads (whole image) and by region-guided inference, failures by image id."""

    analysed: int = 0
    embedded: int = 0
    embeddings_cached: int = 0
    head_predictions: int = 0
    region_predictions: int = 0
    failed: dict[int, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "analysed": self.analysed,
            "embedded": self.embedded,
            "embeddings_cached": self.embeddings_cached,
            "head_predictions": self.head_predictions,
            "region_predictions": self.region_predictions,
            "failed": {str(k): v for k, v in self.failed.items()},
        }


def analyse_images(
    db: Database,
    service: AnalysisService,
    image_ids: Iterable[int] | None,
    progress: Progress | None = None,
    on_image: Callable[[ImageAnalysis], None] | None = None,
    chunk: int = CHUNK,
) -> AnalysisSummary:
    """Run the pipeline on `image_ids` (every image when None) with `service`'s package.

    `on_image` receives each image's `ImageAnalysis` once all its steps are stored (the
    window's loader keeps it for display; the CLI needs nothing).
    """
    refs = image_refs(db, image_ids)
    manifest = service.runtime.manifest
    data_dir = Path(service.settings.data_dir)
    summary = AnalysisSummary()
    if progress is not None:
        progress.set_total(len(refs))
        progress.set_status("analysing images")
    if refs:
        adopt_legacy_heads(db, manifest)
    for start in range(0, len(refs), chunk):
        analyses: dict[int, ImageAnalysis] = {}
        for ref in refs[start : start + chunk]:
            check(progress)
            try:
                analyses[ref.image_id] = analyse_image(db, service, ref.image_id)
            except IMAGE_ERRORS as exc:
                summary.failed[ref.image_id] = _reason(exc)
                _advance(progress, ref.image_id)
        if not analyses:
            continue
        summary.analysed += len(analyses)
        try:
            embedded = embed_images(db, service, list(analyses))
            summary.embedded += embedded.computed
            summary.embeddings_cached += embedded.cached
            summary.head_predictions += predict_with_bundled_heads(
                db, manifest, embedded.vectors
            ) + predict_with_active_heads(db, data_dir, embedded.vectors, manifest)
        except IMAGE_ERRORS as exc:
            for image_id in analyses:
                summary.failed[image_id] = _reason(exc)
                _advance(progress, image_id)
            continue
        for image_id, analysis in analyses.items():
            try:
                stored = region_guided_predictions(
                    db,
                    service,
                    image_id,
                    analysis.result.hotspots,
                    analysis.result.error_map.shape[:2],
                )
                summary.region_predictions += sum(1 for p in stored if p.created)
                if on_image is not None:
                    on_image(analysis)
            except IMAGE_ERRORS as exc:
                summary.failed[image_id] = _reason(exc)
            _advance(progress, image_id)
    return summary


def analysed_image_ids(db: Database, data_dir: Path, manifest: ModelManifest) -> list[int]:
    """The images `manifest`'s package has embedded (those a refresh after training or an
    activation re-runs the pipeline on; nothing else is analysed then)."""
    return sorted(cached_embeddings(Path(data_dir), image_refs(db), manifest))


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else repr(exc)


def _advance(progress: Progress | None, image_id: int) -> None:
    if progress is not None:
        progress.advance(1, current=str(image_id))


def refresh_predictions(
    db: Database,
    settings: ServiceSettings,
    model_version_id: int,
    progress: Progress | None = None,
) -> AnalysisSummary | None:
    """After the head version `model_version_id` was trained or activated: the pipeline on
    every image that the package the head applies to has embedded, so each active head's
    whole-image and region-guided predictions exist for them. None when no installed package
    fits the head (nothing can be predicted then)."""
    with db.read() as session:
        version = session.get(ModelVersion, model_version_id)
        if version is None:
            raise ValueError(f"no model version with id {model_version_id}")
        file_sha256 = dict(version.file_sha256 or {})
    manifest = head_package(settings, file_sha256)
    if manifest is None:
        return None
    service = ErrorMapService(settings, manifest.name)
    ids = analysed_image_ids(db, Path(settings.data_dir), manifest)
    return analyse_images(db, service, ids, progress)
