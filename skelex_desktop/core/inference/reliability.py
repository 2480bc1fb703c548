"""What a package's own calibration says about its error map, in words for the reader.

`calibrate_package` (SynthMSK, with abnormal images) records how well the map separated
abnormal from normal images and finding pixels from normal bone. Below the review's bar
(`MIN_RELIABLE_AUROC`, the same as for task heads) the viewer says so next to the map, so a
reader does not take hotspots on normal anatomy or a coin-flip "abnormal" call at face value.
A calibration on normal studies only (`model calibrate`) measures neither, so it adds no caveat.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from skelex_desktop.core.domain import MIN_RELIABLE_AUROC

MEASURES = (
    ("image_auroc", "abnormal vs normal images"),
    ("finding_pixel_auroc_inside_bone", "finding pixels vs normal bone"),
)


def map_caveat(errormap: Mapping[str, Any]) -> str | None:
    """One sentence when the calibration record of a manifest's `errormap` section measured a
    weak map (any AUROC of `MEASURES` below `MIN_RELIABLE_AUROC`); None otherwise."""
    record = errormap.get("calibration")
    if not isinstance(record, Mapping):
        return None
    weak = []
    for key, what in MEASURES:
        value = record.get(key)
        if isinstance(value, int | float) and math.isfinite(value) and value < MIN_RELIABLE_AUROC:
            weak.append(f"{what} AUROC {value:.2f}")
    if not weak:
        return None
    return (
        f"Weak map on its calibration set ({'; '.join(weak)}; bar {MIN_RELIABLE_AUROC:.2f}): "
        "the abnormal call is unreliable and hotspots often mark normal anatomy."
    )
