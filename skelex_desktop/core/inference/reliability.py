"""What a package's own calibration says about its error map, in words for the reader.

`calibrate_package` (SynthMSK, with abnormal images) records how well the map separated
abnormal from normal images and finding pixels from normal bone. Below the review's bar
(`MIN_RELIABLE_AUROC`, the same as for task heads) the viewer says so next to the map, so a
reader does not take hotspots on normal anatomy or a coin-flip "abnormal" call at face value.
A calibration on the user's normal studies (`model calibrate`) measures neither; it carries
the previous SynthMSK measures over (`carried_measures`) when it leaves the map itself as it was
(no structure table before or after), so the caveat stays; otherwise there is none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from skelex_desktop.core.domain import MIN_RELIABLE_AUROC

CARRIED = "synthmsk"  # key of the carried-over measures in a user calibration record
MEASURES = (
    ("image_auroc", "abnormal vs normal images"),
    ("finding_pixel_auroc_inside_bone", "finding pixels vs normal bone"),
)


def carried_measures(record: Any) -> dict[str, Any] | None:
    """The SynthMSK measures of a calibration record (its own, or those it carried over), with
    the data they were measured on; None when it has none."""
    if not isinstance(record, Mapping):
        return None
    if any(finite_or_none(record.get(key)) is not None for key, _what in MEASURES):
        return {k: record.get(k) for k in ("data", *(key for key, _what in MEASURES))}
    carried = record.get(CARRIED)
    return dict(carried) if isinstance(carried, Mapping) else None


def finite_or_none(value: object) -> float | None:
    """`value` as a float when it is a finite number (a stored AUROC), else None."""
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def map_caveat(errormap: Mapping[str, Any]) -> str | None:
    """One sentence when the calibration record of a manifest's `errormap` section measured a
    weak map (any AUROC of `MEASURES` below `MIN_RELIABLE_AUROC`, its own or carried over);
    None otherwise."""
    measures = carried_measures(errormap.get("calibration"))
    if measures is None:
        return None
    values = [(what, finite_or_none(measures.get(key))) for key, what in MEASURES]
    weak = [
        f"{what} AUROC {v:.2f}" for what, v in values if v is not None and v < MIN_RELIABLE_AUROC
    ]
    if not weak:
        return None
    return (
        f"Weak map on its SynthMSK calibration set ({'; '.join(weak)}; bar "
        f"{MIN_RELIABLE_AUROC:.2f}): the abnormal call is unreliable and hotspots often mark "
        "normal anatomy."
    )
