"""Error-map statistics of an image as task-head input: the feature sets a head file records.

A head's input is its *feature set* (`HeadWeights.features`):

- "embedding": the package's whole-image embedding [D] (every head before issue #20, and the
  default of a head file that records none);
- "embedding+map": the embedding followed by the 16 `MAP_FEATURES` of the image's error map
  (`map_features`), [D + 16]. Measured in docs/TRAINING.md ("Heads from the error map"): on the
  demo package it lifts the implant head's CV AUROC from 0.48 to 0.77 and leaves fracture and
  tumour heads where they were.

`map_features` is what `bench/heads_from_map.py` measured, computed from what
`MaeRuntime.analyse` computes: the model-space map and its foreground, the hotspots found on it
(model space, the package's calibrated threshold), the anomaly score, the full-resolution map
and the top hotspot's region-guided crop (`region_guided.plan_regions(k=1)`). numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

EMBEDDING = "embedding"
EMBEDDING_MAP = "embedding+map"
FEATURE_SETS = (EMBEDDING, EMBEDDING_MAP)
MAP_FEATURES = (
    "fg_mean",  # error inside the app's foreground: mean, std, percentiles 90 / 99 / 99.9
    "fg_std",
    "fg_p90",
    "fg_p99",
    "fg_p999",
    "anomaly_score",  # the image's analysis score
    "log1p_hotspots",  # log(1 + number of hotspots)
    "hotspot_area_share",  # their total area / foreground area
    "top_peak",  # the top hotspot: peak error, mean error, robust z (its score), area share
    "top_mean",
    "top_z",
    "top_area_share",
    "crop_mean",  # the full-resolution map in the top hotspot's crop: mean, p99, max,
    "crop_p99",
    "crop_max",
    "crop_mean_ratio",  # and its mean / the foreground mean
)


class SpotStats(Protocol):
    """What the statistics read of a model-space hotspot (a `Hotspot` has it)."""

    @property
    def peak_error(self) -> float: ...

    @property
    def mean_error(self) -> float: ...

    @property
    def score(self) -> float: ...

    @property
    def area(self) -> int: ...


def map_features(
    model_map: np.ndarray,
    foreground: np.ndarray,
    spots: Sequence[SpotStats],
    score: float,
    full_map: np.ndarray,
    crop: tuple[int, int, int, int],
) -> np.ndarray:
    """The `MAP_FEATURES` vector [16] of one image: `model_map` [S, S] and its bool
    `foreground`, the model-space hotspots best first (`find_hotspots`), the anomaly `score`,
    the full-resolution map and the top hotspot's crop box (x0, y0, x1, y1) in it (the whole
    image when there is no hotspot). Without a hotspot the four top-hotspot values are 0."""
    fg = foreground if foreground.any() else np.ones_like(foreground, bool)
    inside = np.asarray(model_map, np.float64)[fg]
    fg_area = float(fg.sum())
    top = spots[0] if spots else None
    x0, y0, x1, y1 = crop
    region = np.asarray(full_map, np.float64)[y0:y1, x0:x1]
    if region.size == 0:
        raise ValueError(f"empty crop {crop} of a map of shape {np.shape(full_map)}")
    values = [
        inside.mean(),
        inside.std(),
        np.percentile(inside, 90),
        np.percentile(inside, 99),
        np.percentile(inside, 99.9),
        score,
        np.log1p(len(spots)),
        sum(s.area for s in spots) / fg_area,
        top.peak_error if top else 0.0,
        top.mean_error if top else 0.0,
        top.score if top else 0.0,
        top.area / fg_area if top else 0.0,
        region.mean(),
        np.percentile(region, 99),
        region.max(),
        region.mean() / max(inside.mean(), 1e-12),
    ]
    return np.array(values, np.float64)


def head_input(
    features: str, embeddings: np.ndarray, map_stats: np.ndarray | None = None
) -> np.ndarray:
    """[N, D'] input of a head of feature set `features` from embeddings [N, D] and, for
    "embedding+map", the images' `map_features` [N, 16] in the same order."""
    x = np.atleast_2d(np.asarray(embeddings, np.float64))
    if features == EMBEDDING:
        return x
    if features != EMBEDDING_MAP:
        raise ValueError(f"unknown head feature set {features!r}; expected one of {FEATURE_SETS}")
    if map_stats is None:
        raise ValueError("an 'embedding+map' head needs the images' error-map statistics")
    m = np.atleast_2d(np.asarray(map_stats, np.float64))
    if m.shape != (len(x), len(MAP_FEATURES)):
        raise ValueError(f"expected map statistics [{len(x)}, {len(MAP_FEATURES)}], got {m.shape}")
    return np.hstack([x, m])
