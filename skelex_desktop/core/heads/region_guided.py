"""Region-guided inference: task heads applied to the whole image and to crops around the top
error-map hotspots, each class taking the maximum over regions.

The reference classifies the whole image and its detector's crops and takes, per class, the
maximum over regions; here the error map's hotspots stand in for the unreleased detector.

Regions: index 0 is the whole image; then up to `k` square crops, one per top hotspot (best
score first), centred on the hotspot, side = `margin` x the hotspot's longer side but at
least `min_side` full-resolution pixels and at most the image's shorter side. A crop that
would leave the image is shifted back inside (not clipped), so it stays square and needs no
letterbox; a crop equal to an earlier region is dropped. Every region goes through the same
preprocessing as the whole image (`embeddings.model_input`: per-crop min-max, resize) and all
of them are embedded in one batched `runtime.embed` call.

Combination (`combine_regions`), on the temperature-scaled probabilities of each region:
- binary: P(positive) = max over regions, P(negative) = 1 - that; the driver is the region
  of that maximum.
- multiclass and ordinal: per-class maximum over regions, renormalised to sum to one (the
  reference's rule); the driver is the region with the highest probability of the combined
  distribution's top class.
Ties go to the lowest index, so the whole image drives whenever no crop beats it.

`region_guided_predictions` stores the result of each active head as a `Prediction` with
`details.method = "task head (region-guided)"`, the regions and the driver.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from skelex_desktop.core.db.engine import Database
from skelex_desktop.core.db.models import Prediction, Task
from skelex_desktop.core.heads.model import HeadWeights
from skelex_desktop.core.heads.training_set import TaskSpec
from skelex_desktop.core.inference.embeddings import model_input
from skelex_desktop.core.inference.hotspots import Hotspot
from skelex_desktop.core.inference.interfaces import AnalysisService, ModelManifest, ModelRuntime

REGION_METHOD = "task head (region-guided)"
WHOLE_IMAGE = "whole image"
DEFAULT_K = 3
DEFAULT_MARGIN = 2.0
DEFAULT_MIN_SIDE = 64
RULES = {
    "binary": "max over regions of P(positive); P(negative) = 1 - that",
    "multiclass": "per-class max over regions, renormalised",
    "ordinal": "per-class max over regions, renormalised",
}

Box = tuple[int, int, int, int]  # x0, y0, x1, y1: inclusive-exclusive full-resolution pixels


class SpotBox(Protocol):
    """What placing a crop reads of a hotspot (a `Hotspot` has it)."""

    @property
    def x0(self) -> float: ...

    @property
    def y0(self) -> float: ...

    @property
    def x1(self) -> float: ...

    @property
    def y1(self) -> float: ...

    @property
    def score(self) -> float: ...


# a Hotspot, a mapping with its keys (x0, y0, x1, y1 and optionally score), or (x0, y0, x1, y1,
# score)
Spot = SpotBox | Mapping[str, Any] | Sequence[float]


@dataclass(frozen=True)
class Region:
    """One classified region: the whole image (index 0) or a crop around a hotspot."""

    index: int
    box: Box
    hotspot: int | None = None  # rank of the hotspot (0 = best) the crop is centred on
    hotspot_score: float | None = None

    @property
    def label(self) -> str:
        return WHOLE_IMAGE if self.hotspot is None else f"hotspot {self.hotspot + 1}"

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "box": list(self.box),
            "label": self.label,
            "hotspot_score": self.hotspot_score,
        }


@dataclass
class TaskRegions:
    """One task's probabilities per region [R, C], their combination [C] and the driver."""

    task: TaskSpec
    per_region: np.ndarray
    probabilities: np.ndarray
    driver: int


@dataclass
class RegionGuidedResult:
    """The regions and, per task name, the combined prediction."""

    regions: list[Region]
    tasks: dict[str, TaskRegions]

    def details(self, task: str) -> dict[str, Any]:
        """The `Prediction.details` additions for `task`: rule, regions (with their own class
        probabilities) and the driver."""
        result = self.tasks[task]
        classes = result.task.classes
        regions = []
        for region, p in zip(self.regions, result.per_region, strict=True):
            regions.append(
                {
                    **region.to_json(),
                    "probabilities": {c: float(v) for c, v in zip(classes, p, strict=True)},
                }
            )
        driver = self.regions[result.driver]
        return {
            "method": REGION_METHOD,
            "combination": RULES[result.task.kind],
            "regions": regions,
            "driver": {"index": driver.index, "box": list(driver.box), "label": driver.label},
        }


def _spot(h: Spot) -> tuple[float, float, float, float, float]:
    """(x0, y0, x1, y1, score) of a Hotspot, a mapping with those keys, or a 5-sequence."""
    if isinstance(h, Mapping):
        return (
            float(h["x0"]),
            float(h["y0"]),
            float(h["x1"]),
            float(h["y1"]),
            float(h.get("score", 0.0)),
        )
    if hasattr(h, "x0"):  # duck-typed: anything with a Hotspot's box and score
        box = cast(SpotBox, h)
        return float(box.x0), float(box.y0), float(box.x1), float(box.y1), float(box.score)
    x0, y0, x1, y1, score = h
    return float(x0), float(y0), float(x1), float(y1), float(score)


def crop_box(
    spot: Sequence[float],
    shape: tuple[int, int],
    margin: float = DEFAULT_MARGIN,
    min_side: int = DEFAULT_MIN_SIDE,
) -> Box:
    """The square crop around box `spot` (x0, y0, x1, y1) in an image of `shape` (rows, cols):
    side max(margin x longer box side, min_side), at most the shorter image side, centred on
    the box and shifted to lie inside the image."""
    rows, cols = int(shape[0]), int(shape[1])
    x0, x1 = sorted((min(max(spot[0], 0), cols), min(max(spot[2], 0), cols)))
    y0, y1 = sorted((min(max(spot[1], 0), rows), min(max(spot[3], 0), rows)))
    side = max(margin * max(x1 - x0, y1 - y0), float(min_side))
    side_px = max(1, min(int(round(side)), rows, cols))
    left = int(round((x0 + x1) / 2 - side_px / 2))
    top = int(round((y0 + y1) / 2 - side_px / 2))
    left = min(max(left, 0), cols - side_px)
    top = min(max(top, 0), rows - side_px)
    return left, top, left + side_px, top + side_px


def plan_regions(
    shape: tuple[int, int],
    hotspots: Iterable[Spot],
    k: int = DEFAULT_K,
    margin: float = DEFAULT_MARGIN,
    min_side: int = DEFAULT_MIN_SIDE,
) -> list[Region]:
    """The whole image, then crops around the `k` best-scoring hotspots (duplicates dropped)."""
    rows, cols = int(shape[0]), int(shape[1])
    if rows < 1 or cols < 1:
        raise ValueError(f"empty image of shape {shape}")
    regions = [Region(0, (0, 0, cols, rows))]
    spots = sorted((_spot(h) for h in hotspots), key=lambda s: s[4], reverse=True)
    for rank, spot in enumerate(spots[: max(k, 0)]):
        box = crop_box(spot, (rows, cols), margin, min_side)
        if any(r.box == box for r in regions):
            continue
        regions.append(Region(len(regions), box, rank, spot[4]))
    return regions


def region_inputs(
    pixels: np.ndarray, regions: Sequence[Region], manifest: ModelManifest
) -> np.ndarray:
    """[R, 3, S, S] model inputs of the regions, each preprocessed like a whole image."""
    pixels = np.asarray(pixels)
    return np.stack(
        [model_input(pixels[y0:y1, x0:x1], manifest) for x0, y0, x1, y1 in (r.box for r in regions)]
    )


def embed_regions(
    pixels: np.ndarray, regions: Sequence[Region], runtime: ModelRuntime
) -> np.ndarray:
    """[R, D] embeddings of the regions in one batched `runtime.embed` call."""
    vectors = np.asarray(runtime.embed(region_inputs(pixels, regions, runtime.manifest)))
    if vectors.ndim != 2 or vectors.shape[0] != len(regions):
        raise ValueError(f"embedding of {len(regions)} regions returned shape {vectors.shape}")
    return vectors


def combine_regions(kind: str, per_region: np.ndarray) -> tuple[np.ndarray, int]:
    """(combined [C] probabilities, driver region index) from per-region probabilities [R, C].

    Binary: the positive (second) class's maximum over regions, the negative its complement.
    Multiclass / ordinal: per-class maximum, renormalised; the driver is the region with the
    highest probability of the combined top class. Ties go to the lowest region index.
    """
    p = np.asarray(per_region, np.float64)
    if p.ndim != 2 or p.shape[0] < 1:
        raise ValueError(f"expected [regions, classes] probabilities, got shape {p.shape}")
    if kind == "binary":
        if p.shape[1] != 2:
            raise ValueError(f"a binary task has 2 classes, got {p.shape[1]}")
        driver = int(np.argmax(p[:, 1]))
        positive = float(p[driver, 1])
        return np.array([1.0 - positive, positive]), driver
    if kind not in ("multiclass", "ordinal"):
        raise ValueError(f"no region combination for task kind {kind!r}")
    peak = p.max(axis=0)
    combined = peak / peak.sum()
    driver = int(np.argmax(p[:, int(np.argmax(combined))]))
    return combined, driver


def classify_regions(
    embeddings: np.ndarray, regions: Sequence[Region], weights: HeadWeights
) -> RegionGuidedResult:
    """Each head task's per-region probabilities (temperature-scaled) and their combination."""
    per_task = weights.probabilities(embeddings)
    tasks = {}
    for task in weights.tasks:
        per_region = per_task[task.name]
        combined, driver = combine_regions(task.kind, per_region)
        tasks[task.name] = TaskRegions(task, per_region, combined, driver)
    return RegionGuidedResult(list(regions), tasks)


def region_guided(
    pixels: np.ndarray,
    hotspots: Iterable[Spot],
    weights: HeadWeights,
    runtime: ModelRuntime,
    k: int = DEFAULT_K,
    margin: float = DEFAULT_MARGIN,
    min_side: int = DEFAULT_MIN_SIDE,
) -> RegionGuidedResult:
    """Region-guided predictions of one head for decoded pixels (gray [H, W] or RGB [H, W, 3])
    and their full-resolution hotspots; `runtime` needs `manifest` and `embed`."""
    regions = plan_regions(np.shape(pixels)[:2], hotspots, k, margin, min_side)
    return classify_regions(embed_regions(pixels, regions, runtime), regions, weights)


@dataclass(frozen=True)
class RegionPrediction:
    """A stored region-guided prediction; `created` is False when it was already there."""

    prediction_id: int
    image_id: int
    model_version_id: int
    head: str
    task: str
    probabilities: dict[str, float]
    score: float | None
    details: dict[str, Any]
    created: bool


def _stored(
    session: Session, image_id: int, version_ids: list[int]
) -> dict[tuple[int, int], Prediction]:
    """Region-guided predictions of `image_id` by (model version id, task id)."""
    if not version_ids:
        return {}
    rows = session.scalars(
        select(Prediction)
        .where(Prediction.image_id == image_id, Prediction.model_version_id.in_(version_ids))
        .order_by(Prediction.id)
    )
    return {
        (p.model_version_id, p.task_id): p
        for p in rows
        if (p.details or {}).get("method") == REGION_METHOD
    }


def region_guided_predictions(
    db: Database,
    service: AnalysisService,
    image_id: int,
    hotspots: Sequence[Hotspot],
    map_shape: tuple[int, ...] | None = None,
    k: int = DEFAULT_K,
) -> list[RegionPrediction]:
    """Store, where missing, each active head's region-guided prediction for `image_id`.

    `service`: the ErrorMapService of a package the head applies to (`versions.applies_to`:
    its embeddings are those the head was trained on); `hotspots`: that image's error-map
    hotspots, which place the crops; `map_shape`: the shape of that map, checked against the
    image's pixels (an analysis of another image is refused). Returns one entry
    per (active head, task), stored now or before, in head then task order; pixels are read
    and embedded (one batch) only when something is missing.
    """
    from skelex_desktop.core.heads.predict import load_verified_head
    from skelex_desktop.core.heads.training_job import head_prediction
    from skelex_desktop.core.heads.versions import active_user_heads
    from skelex_desktop.core.review.decisions import image_details

    runtime = service.runtime
    data_dir = Path(service.settings.data_dir)
    with db.read() as session:
        image = image_details(session, image_id)
        heads = active_user_heads(session, runtime.manifest)
        task_ids = dict(session.execute(select(Task.name, Task.id)).all())
        stored = _stored(session, image_id, [v.id for v in heads])
    loaded = [(version, load_verified_head(data_dir, version)) for version in heads]
    wanted = [
        (version, weights, task)
        for version, weights in loaded
        for task in weights.tasks
        if task.name in task_ids
    ]
    missing = [w for w in wanted if (w[0].id, task_ids[w[2].name]) not in stored]
    outcomes: dict[int, RegionGuidedResult] = {}  # by model version id
    if missing:
        from skelex_desktop.core.ingest.pixels import read_frame

        decoded = read_frame(Path(image.file_path), image.frame)
        pixels = decoded.model_pixels
        if map_shape is not None and tuple(map_shape[:2]) != tuple(pixels.shape[:2]):
            raise ValueError(
                f"image {image_id}: the analysis is of a {tuple(map_shape[:2])} "
                f"image, the pixels are {pixels.shape[:2]}"
            )
        regions = plan_regions(pixels.shape[:2], hotspots, k)
        embeddings = embed_regions(pixels, regions, runtime)
        for version, weights, _task in missing:
            if version.id not in outcomes:
                outcomes[version.id] = classify_regions(embeddings, regions, weights)
    out: list[RegionPrediction] = []
    with db.write() as session:
        stored = _stored(session, image_id, [v.id for v in heads])  # again: one writer at a time
        for version, weights, task in wanted:
            task_id = task_ids[task.name]
            created = (version.id, task_id) not in stored
            if created:
                outcome = outcomes.get(version.id)
                if outcome is None:  # stored when read, removed since: nothing computed for it
                    continue
                prediction = head_prediction(
                    image_id,
                    version.id,
                    task_id,
                    task.kind,
                    task.classes,
                    outcome.tasks[task.name].probabilities,
                    version.name,
                    version.version,
                    weights.temperatures.get(task.name, 1.0),
                )
                prediction.details = {**(prediction.details or {}), **outcome.details(task.name)}
                session.add(prediction)
                session.flush()
            else:
                prediction = stored[(version.id, task_id)]
            out.append(
                RegionPrediction(
                    prediction.id,
                    image_id,
                    version.id,
                    f"{version.name} {version.version}",
                    task.name,
                    dict(prediction.probabilities),
                    prediction.score,
                    dict(prediction.details or {}),
                    created,
                )
            )
    return out
